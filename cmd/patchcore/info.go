package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/modelfile"
)

// manifestTag is the tag of the JSON manifest section of a model file.
const manifestTag = "MANI"

const infoSynopsis = "info [--json] MODEL"

// cmdInfo prints a model file's container version, its sections and its manifest. The
// file is fully validated (checksums included) but neither the backbone nor the search
// index is opened, so it works without the backbone file.
func cmdInfo(args []string, e env) error {
	var asJSON bool
	fs := newFlagSet("info", infoSynopsis, e)
	fs.BoolVar(&asJSON, "json", false, "print only the manifest JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("info: want exactly one model file, got %d arguments", len(pos))
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return fmt.Errorf("%w: %v", core.ErrIO, err)
	}
	version, sections, err := modelfile.Decode(b)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", core.ErrFormat, pos[0], err)
	}
	man, ok := modelfile.Find(sections, manifestTag)
	if !ok {
		return fmt.Errorf("%w: %s has no manifest section", core.ErrFormat, pos[0])
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, man, "", "  "); err != nil {
		return fmt.Errorf("%w: %s: manifest: %v", core.ErrFormat, pos[0], err)
	}
	if !asJSON {
		fmt.Fprintf(e.stdout, "%s: model file version %d, %d bytes\n", pos[0], version, len(b))
		for _, s := range sections {
			fmt.Fprintf(e.stdout, "  section %-4s %10d bytes\n", s.Tag, len(s.Payload))
		}
		fmt.Fprintln(e.stdout, "manifest:")
	}
	pretty.WriteByte('\n')
	_, err = e.stdout.Write(pretty.Bytes())
	return err
}
