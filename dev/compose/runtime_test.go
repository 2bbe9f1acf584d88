package compose_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// emulateRuntime does what a Dockerfile's runtime stage does, in a fresh
// directory standing for the image's /: COPY --from puts the build stage's
// binary (under buildRoot) where the stage says, with the mode it had and
// owned by root, as Docker does. It returns the command that ENTRYPOINT
// runs, resolved in that directory, the image's environment, and the
// credential of its USER. Run as root, the test then really switches to
// that user; otherwise it checks that the user could run the file, from
// its mode bits, and runs it as itself.
func emulateRuntime(t *testing.T, path string, rt runtime, buildRoot string) (argv, env []string, cred *syscall.Credential) {
	t.Helper()
	image, err := os.MkdirTemp("", "runtime-image-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(image) })
	// Like every directory of an image: root's, readable and searchable by all.
	if err := os.Chmod(image, 0o755); err != nil {
		t.Fatal(err)
	}
	dest := rt.dest
	if strings.HasSuffix(dest, "/") {
		dest += filepath.Base(rt.binary)
	}
	if !filepath.IsAbs(dest) {
		t.Fatalf("%s: COPY --from to %s: the runtime stage has no WORKDIR; use an absolute path", path, rt.dest)
	}
	src := filepath.Join(buildRoot, rt.binary)
	info, err := os.Stat(src)
	if err != nil {
		t.Fatalf("%s: COPY --from=… %s: %v", path, rt.binary, err)
	}
	if err := copyFile(src, filepath.Join(image, dest)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(image, dest), info.Mode().Perm()); err != nil {
		t.Fatal(err)
	}

	if len(rt.entrypoint) == 0 || !filepath.IsAbs(rt.entrypoint[0]) {
		t.Fatalf("%s: ENTRYPOINT %q: want an absolute path in the image", path, rt.entrypoint)
	}
	entry := filepath.Join(image, rt.entrypoint[0])
	st, err := os.Stat(entry)
	if err != nil {
		t.Fatalf("%s: ENTRYPOINT %s is not in the image (COPY put the binary at %s): %v", path, rt.entrypoint[0], dest, err)
	}
	argv = append([]string{entry}, rt.entrypoint[1:]...)

	env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"} // Docker's default
	for k, v := range rt.env {
		env = append(env, k+"="+v)
	}

	uid, gid := imageUser(t, path, rt.user)
	if os.Geteuid() == 0 {
		return argv, env, &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
	}
	// The file is root's in the image, so the user runs it through the
	// "other" bits; the directories above it are 0755.
	if uid != 0 && st.Mode().Perm()&0o005 != 0o005 {
		t.Fatalf("%s: ENTRYPOINT %s has mode %s: USER %s cannot run it", path, rt.entrypoint[0], st.Mode().Perm(), rt.user)
	}
	t.Logf("not root: ran %s as uid %d, having checked its mode lets USER %s run it", rt.entrypoint[0], os.Geteuid(), rt.user)
	return argv, env, nil
}

// imageUser parses USER's numeric uid[:gid] (a name would need the image's
// /etc/passwd).
func imageUser(t *testing.T, path, user string) (uid, gid uint32) {
	t.Helper()
	u, g, hasGID := strings.Cut(user, ":")
	parse := func(s string) uint32 {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			t.Fatalf("%s: USER %q: write it as a numeric uid[:gid]", path, user)
		}
		return uint32(n)
	}
	uid = parse(u)
	gid = uid
	if hasGID {
		gid = parse(g)
	}
	return uid, gid
}

// processIDs reads the real uid and gid of a running process.
func processIDs(t *testing.T, pid int) (uid, gid uint32) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, id := range []struct {
			prefix string
			to     *uint32
		}{{"Uid:", &uid}, {"Gid:", &gid}} {
			if rest, ok := strings.CutPrefix(sc.Text(), id.prefix); ok {
				n, _ := strconv.ParseUint(strings.Fields(rest)[0], 10, 32)
				*id.to = uint32(n)
			}
		}
	}
	return uid, gid
}
