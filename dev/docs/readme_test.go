// Package docs keeps the README true where a test can tell: its client
// snippets are the very files the end-to-end tests run.
package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
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
