package e2e

import (
	"bytes"
	"os"
	"testing"
)

// The repository's copy of the protocol must match the shared contract
// beside the checkout, when that is present. docs/design.md is the
// project's own and follows the code, so it is not pinned.
func TestDocsInStepWithContract(t *testing.T) {
	for _, pair := range [][2]string{
		{"../docs/protocol.md", "../../shared/PROTOCOL.md"},
	} {
		contract, err := os.ReadFile(pair[1])
		if os.IsNotExist(err) {
			t.Skipf("%s not present beside the checkout", pair[1])
		}
		if err != nil {
			t.Fatal(err)
		}
		ours, err := os.ReadFile(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, contract) {
			t.Errorf("%s differs from %s: bring the copy in step (and the code with it)", pair[0], pair[1])
		}
	}
}
