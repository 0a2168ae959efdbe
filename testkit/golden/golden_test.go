package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// The files the lists describe are where Dir says.
func TestDirHoldsTheFiles(t *testing.T) {
	for _, name := range []string{"replay.csv", "replay.jsonl"} {
		if _, err := os.Stat(filepath.Join(Dir(), name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
