// Command patchcore fits, applies and evaluates PatchCore anomaly-detection models.
//
// Usage:
//
//	patchcore fit     -o MODEL --backbone ONNX [flags] IMAGE|DIR|@LIST...
//	patchcore predict -m MODEL [-o DIR] [--normalized] [flags] IMAGE|DIR|@LIST...
//	patchcore eval    -m MODEL [-o DIR] [--store-threshold] [flags] CATEGORY_DIR
//	patchcore info    [--json] MODEL
//
// fit builds a model from good images: folders (their *.png, *.jpg and *.jpeg files,
// sorted by name), single files, or @LIST files naming one image per line. Backbone
// settings (layers, normalisation, input size) default to the JSON sidecar next to the
// ONNX file (same name, extension .json), as scripts/make-backbone.sh writes it.
// --calibrate-holdout keeps some training images out of the memory bank and sets the
// model's decision threshold from their scores.
//
// predict prints one line per image: the image score (or, with --normalized, the score
// normalised to [0, 1] with the threshold at 0.5) and the verdict against the model's
// threshold; with -o it writes heat-map overlays and segmentation masks as PNG files.
//
// eval scores the test set of an MVTec AD layout folder (CATEGORY/test/<type>/*.png with
// masks in CATEGORY/ground_truth/<type>/<name>_mask.png; "good" is the normal type) and
// reports image AUROC, full-pixel AUROC, AUPRO up to FPR 0.3 and the F1-optimal
// threshold; with -o it writes scores.csv, metrics.json, roc.png, gallery.png (the worst
// cases) and per-image heat maps. Masks are compared at the model's crop resolution,
// after the images' resize and centre crop, positive where the result is 255.
//
// info prints a model file's sections and its manifest.
//
// Exit status: 0 on success, 1 on errors, 2 on usage errors.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/libpatchcore/libpatchcore/core"
)

// errUsage marks errors in the command line; main exits with status 2 on them.
var errUsage = errors.New("usage")

// usageErrorf returns a usage error with a message.
func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

const usageText = `usage:
  patchcore fit     -o MODEL --backbone ONNX [flags] IMAGE|DIR|@LIST...
  patchcore predict -m MODEL [-o DIR] [--normalized] [flags] IMAGE|DIR|@LIST...
  patchcore eval    -m MODEL [-o DIR] [--store-threshold] [flags] CATEGORY_DIR
  patchcore info    [--json] MODEL
Run "patchcore COMMAND -h" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// env is what a command needs from its surroundings.
type env struct {
	stdout, stderr io.Writer
	// bar selects the redrawn progress bar (stderr is a terminal) over log lines.
	bar bool
}

// run executes the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	e := env{stdout: stdout, stderr: stderr, bar: stderr == io.Writer(os.Stderr) && isTerminal(os.Stderr)}
	err := dispatch(args, e)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "patchcore:", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return 2
	default:
		fmt.Fprintln(stderr, "patchcore:", err)
		return 1
	}
}

func dispatch(args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usageText)
		return usageErrorf("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "fit":
		return cmdFit(rest, e)
	case "predict":
		return cmdPredict(rest, e)
	case "eval":
		return cmdEval(rest, e)
	case "info":
		return cmdInfo(rest, e)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, usageText)
		return nil
	default:
		fmt.Fprint(e.stderr, usageText)
		return usageErrorf("unknown command %q", cmd)
	}
}

// newFlagSet returns a flag set for a command that reports errors instead of exiting.
func newFlagSet(name, synopsis string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: patchcore %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args with flags and positional arguments in any order ("--" ends the
// flags) and returns the positional arguments. -h returns flag.ErrHelp; other flag errors
// are usage errors.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagWasSet reports whether the flag name was given on the command line.
func flagWasSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// imageExts are the file extensions collected from folders (compared in lower case).
var imageExts = []string{".png", ".jpg", ".jpeg"}

// isImageFile reports whether name has an image extension.
func isImageFile(name string) bool {
	return slices.Contains(imageExts, strings.ToLower(filepath.Ext(name)))
}

// listImages expands image arguments: a folder yields its image files sorted by name (not
// recursive), "@FILE" yields the paths listed in FILE one per line (blank lines and lines
// starting with # are skipped; relative paths are relative to FILE's folder), anything
// else is taken as an image path.
func listImages(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if list, ok := strings.CutPrefix(a, "@"); ok {
			paths, err := readList(list)
			if err != nil {
				return nil, err
			}
			out = append(out, paths...)
			continue
		}
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", core.ErrIO, err)
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		files, err := imagesInDir(a)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%w: folder %s holds no .png/.jpg/.jpeg images", core.ErrInvalidArgument, a)
		}
		out = append(out, files...)
	}
	return out, nil
}

// imagesInDir returns the image files directly in dir, sorted by name.
func imagesInDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", core.ErrIO, err)
	}
	var out []string
	for _, en := range entries { // os.ReadDir sorts by name
		if en.Type().IsRegular() && isImageFile(en.Name()) {
			out = append(out, filepath.Join(dir, en.Name()))
		}
	}
	return out, nil
}

// readList reads an @LIST file.
func readList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: image list: %v", core.ErrIO, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !filepath.IsAbs(line) {
			line = filepath.Join(filepath.Dir(path), line)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: image list %s: %v", core.ErrIO, path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: image list %s names no images", core.ErrInvalidArgument, path)
	}
	return out, nil
}

// parseTriple parses the value s of flag name, "v" (all three channels) or "r,g,b", into
// per-channel values.
func parseTriple(name, s string) ([3]float32, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 1 && len(parts) != 3 {
		return [3]float32{}, usageErrorf("--%s %q: want one value or three comma-separated values", name, s)
	}
	var v [3]float32
	for i := range 3 {
		p := parts[min(i, len(parts)-1)]
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return [3]float32{}, usageErrorf("--%s %q: %v", name, s, err)
		}
		v[i] = float32(f)
	}
	return v, nil
}

// modelFlags are the flags that open an existing model file.
type modelFlags struct {
	path, backbone, device string
	threads                int
}

// register adds -m/--model, --backbone, --device and --threads to fs.
func (m *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.path, "model", "", "model file (required)")
	fs.StringVar(&m.path, "m", "", "shorthand for --model")
	fs.StringVar(&m.backbone, "backbone", "", "backbone ONNX file overriding the one the model names (same sha256 required)")
	fs.StringVar(&m.device, "device", "cpu", `backbone device: "cpu", "cuda" or "cuda:N"`)
	fs.IntVar(&m.threads, "threads", 0, "threads (0: all cores)")
}

// open loads the model file.
func (m *modelFlags) open() (*core.Model, error) {
	if m.path == "" {
		return nil, usageErrorf("--model is required")
	}
	model, err := core.LoadModel(m.path, core.LoadOptions{BackbonePath: m.backbone, Device: m.device, Threads: m.threads})
	if err != nil && m.backbone == "" && errors.Is(err, core.ErrIO) {
		if _, serr := os.Stat(m.path); serr == nil { // the model is readable: its backbone is not
			return nil, fmt.Errorf("%w (a model that does not embed its backbone names the ONNX file relative to the model's folder; pass --backbone ONNX)", err)
		}
	}
	return model, err
}
