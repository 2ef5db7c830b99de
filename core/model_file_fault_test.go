package core

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childSaveLoopEnv makes the test binary, re-executed as a child, save models in a loop
// until it is killed.
const childSaveLoopEnv = "PATCHCORE_TEST_SAVE_LOOP"

// TestModelSaveLoopChild is the child side of TestModelSaveSurvivesSIGKILL.
func TestModelSaveLoopChild(t *testing.T) {
	path := os.Getenv(childSaveLoopEnv)
	if path == "" {
		t.Skip("runs only as the child of TestModelSaveSurvivesSIGKILL")
	}
	m, _ := fittedFeatureModel(t)
	os.WriteFile(path+".ready", nil, 0o644)
	for {
		if err := m.Save(path); err != nil {
			t.Fatal(err)
		}
	}
}

// A process killed at random points during save never leaves a truncated or corrupted
// file under the target name: it holds either nothing or a complete, valid model.
func TestModelSaveSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "model.pcm")
	rng := rand.New(rand.NewPCG(7, 7))
	const kills = 12
	for i := range kills {
		os.Remove(path + ".ready")
		cmd := exec.Command(os.Args[0], "-test.run=^TestModelSaveLoopChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childSaveLoopEnv+"="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(path + ".ready"); err == nil {
				break
			}
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // killed before the first rename
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := UnmarshalModel(b, "", LoadOptions{})
		if err != nil {
			t.Fatalf("kill %d left a broken model file (%d bytes): %v", i, len(b), err)
		}
		m.Close()
	}
	// Temporary files of killed writers may remain, but never under the target name.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if name := e.Name(); name != "model.pcm" && name != "model.pcm.ready" && !strings.HasPrefix(name, ".model.pcm.tmp-") {
			t.Errorf("unexpected file %s", name)
		}
	}
}

// Saving into a read-only directory fails with ErrIO and leaves the previous file intact.
func TestModelSaveReadOnlyDirKeepsOldFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	m, _ := fittedFeatureModel(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.pcm")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if err := m.Save(path); !errors.Is(err, ErrIO) {
		t.Fatalf("save into read-only dir: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("previous model file changed")
	}
}

// mountTmpfs mounts a tmpfs of the given size on a new directory, or skips the test when
// the process may not mount (mounting needs root).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Saving onto a full file system, or one remounted read-only, fails with ErrIO and
// leaves the previous model file intact and no temporary file behind.
func TestModelSaveDiskFullAndReadOnly(t *testing.T) {
	m, _ := fittedFeatureModel(t)
	b, _ := m.MarshalBinary()
	dir := mountTmpfs(t, fmt.Sprint(len(b)+len(b)/2))
	path := filepath.Join(dir, "model.pcm")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if err := m.Save(path); !errors.Is(err, ErrIO) {
		t.Fatalf("save onto a full disk: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("previous model file changed by a failed save")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("failed save left files behind: %v", entries)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	if err := m.Save(path); !errors.Is(err, ErrIO) {
		t.Fatalf("save onto a read-only file system: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("previous model file changed by a failed save")
	}
}

// Saving into a missing directory fails with ErrIO.
func TestModelSaveToMissingDirectory(t *testing.T) {
	m, _ := fittedFeatureModel(t)
	if err := m.Save(filepath.Join(t.TempDir(), "no", "such", "dir", "m.pcm")); !errors.Is(err, ErrIO) {
		t.Fatalf("save into a missing directory: %v", err)
	}
}
