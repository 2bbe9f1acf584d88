// Package docs keeps the README true where a test can tell: its client
// snippets are the very files the end-to-end tests run, and its error
// table lists the codes the services answer.
package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/oshirase/oshirase/service/errkind"
)

var snippet = regexp.MustCompile("(?s)<!-- snippet: (\\S+) -->\n```[a-z]*\n(.*?)\n```")

func TestREADMESnippetsMatchTheTestedFiles(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	found := snippet.FindAllSubmatch(readme, -1)
	if len(found) < 6 {
		t.Fatalf("README has %d client snippets, want at least 6", len(found))
	}
	for _, m := range found {
		path, body := string(m[1]), string(m[2])
		file, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Errorf("README quotes %s: %v", path, err)
			continue
		}
		if string(file) != body+"\n" {
			t.Errorf("README's copy of %s differs from the file the tests run; paste the file in again", path)
		}
	}
}

var errorRow = regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\|")

// The README's error table lists every code a client can receive, no more
// and no fewer.
func TestREADMEErrorTableListsEveryCode(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "### Errors\n")
	if start < 0 {
		t.Fatal("README has no Errors section")
	}
	section = section[start:]
	if end := strings.Index(section[1:], "\n### "); end >= 0 {
		section = section[:end+1]
	}
	var listed []string
	for _, m := range errorRow.FindAllStringSubmatch(section, -1) {
		listed = append(listed, m[1])
	}
	for _, code := range errkind.Codes {
		if !slices.Contains(listed, code) {
			t.Errorf("the README's error table does not list %s", code)
		}
	}
	for _, code := range listed {
		if !slices.Contains(errkind.Codes, code) {
			t.Errorf("the README's error table lists %s, which no service answers", code)
		}
	}
}
