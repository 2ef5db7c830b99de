package ort

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"
)

// Options configure a session. Every session runs with full graph optimisation and with
// ONNX Runtime's CPU memory arena. The arena keeps the largest activations it ever held (a
// fit's batch of 8) for the session's lifetime, 25-75 MB of peak RSS in a fit, but without
// it every run maps and faults in its activations afresh: MobileNetV2 predicted in 67
// instead of 53 ms per image and ran its fit batches at 6.8-8.1 instead of 5.3 ms per
// image (docs/benchmarks.md, "Fit memory").
type Options struct {
	// Threads is the number of intra-op threads; 0 lets ONNX Runtime choose (one per
	// physical core). Inter-op parallelism is always 1 (nodes run one after another). The
	// threads sleep instead of spinning between runs, so that they do not take cores from
	// the nearest-neighbour search and the host that run in between (spinning measured
	// ~15% faster on an idle machine, 2-3x slower on a busy one).
	Threads int
	// Device is "cpu" (also ""), "cuda" (GPU 0) or "cuda:N". A CUDA device requires a
	// runtime built with the CUDA execution provider; there is no silent fallback to CPU.
	Device string
	// ExternalDataDir is the directory against which the model's external-data files
	// are resolved when the model is given as bytes (set it to the model file's
	// directory). Empty: models with external data cannot be loaded from bytes.
	ExternalDataDir string
}

// Device is a parsed device string.
type Device struct {
	// CUDA is set for a GPU device.
	CUDA bool
	// ID is the GPU ordinal (0 for CPU).
	ID int
}

// String is the canonical form: "cpu" or "cuda:N".
func (d Device) String() string {
	if d.CUDA {
		return "cuda:" + strconv.Itoa(d.ID)
	}
	return "cpu"
}

// ParseDevice parses "cpu", "cuda" or "cuda:N" (case-insensitive; "" means cpu).
func ParseDevice(s string) (Device, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch {
	case t == "" || t == "cpu":
		return Device{}, nil
	case t == "cuda":
		return Device{CUDA: true}, nil
	case strings.HasPrefix(t, "cuda:"):
		n, err := strconv.Atoi(t[len("cuda:"):])
		if err != nil || n < 0 {
			return Device{}, fmt.Errorf("%w: device %q: the GPU ordinal after \"cuda:\" must be a non-negative integer", ErrArgument, s)
		}
		return Device{CUDA: true, ID: n}, nil
	}
	return Device{}, fmt.Errorf("%w: unknown device %q (want \"cpu\", \"cuda\" or \"cuda:N\")", ErrArgument, s)
}

// Tensor is a float32 tensor exchanged with a session: row-major data and its shape.
type Tensor struct {
	Shape []int64
	Data  []float32
}

// Session is an ONNX Runtime inference session with fixed input and output names.
// Run may be called from several goroutines at once (ONNX Runtime's Run is thread-safe on
// one session); Close waits for the runs in flight.
type Session struct {
	mu      sync.RWMutex
	s       *ortgo.DynamicAdvancedSession
	inputs  []string
	outputs []string
}

// NewSession creates a session from the model's bytes (not retained), computing the named
// outputs from the named inputs.
func NewSession(model []byte, inputs, outputs []string, o Options) (*Session, error) {
	if len(model) == 0 {
		return nil, fmt.Errorf("%w: empty model", ErrArgument)
	}
	return newSession(inputs, outputs, o, func(so *ortgo.SessionOptions) (*ortgo.DynamicAdvancedSession, error) {
		return ortgo.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, so)
	})
}

// NewSessionFromFile creates a session from a model file (external data is resolved next
// to it).
func NewSessionFromFile(path string, inputs, outputs []string, o Options) (*Session, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: model file: %v", ErrArgument, err)
	}
	return newSession(inputs, outputs, o, func(so *ortgo.SessionOptions) (*ortgo.DynamicAdvancedSession, error) {
		return ortgo.NewDynamicAdvancedSession(path, inputs, outputs, so)
	})
}

func newSession(inputs, outputs []string, o Options, create func(*ortgo.SessionOptions) (*ortgo.DynamicAdvancedSession, error)) (*Session, error) {
	if len(inputs) == 0 || len(outputs) == 0 {
		return nil, fmt.Errorf("%w: a session needs at least one input and one output name", ErrArgument)
	}
	if o.Threads < 0 {
		return nil, fmt.Errorf("%w: negative thread count %d", ErrArgument, o.Threads)
	}
	dev, err := ParseDevice(o.Device)
	if err != nil {
		return nil, err
	}
	info, err := Init()
	if err != nil {
		return nil, err
	}
	if dev.CUDA && !info.HasProvider("CUDAExecutionProvider") {
		return nil, fmt.Errorf("%w: ONNX Runtime at %s has no CUDA execution provider (it has %s); device %q cannot be used",
			ErrUnavailable, info.Path, strings.Join(info.Providers, ", "), o.Device)
	}
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: creating session options: %v", ErrRuntime, err)
	}
	defer so.Destroy()
	steps := []struct {
		what string
		do   func() error
	}{
		{"intra-op threads", func() error { return so.SetIntraOpNumThreads(o.Threads) }},
		{"inter-op threads", func() error { return so.SetInterOpNumThreads(1) }},
		{"graph optimisation level", func() error { return so.SetGraphOptimizationLevel(ortgo.GraphOptimizationLevelEnableAll) }},
		{"CPU memory arena", func() error { return so.SetCpuMemArena(true) }},
		{"thread spinning", func() error { return so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0") }},
	}
	if o.ExternalDataDir != "" {
		steps = append(steps, struct {
			what string
			do   func() error
		}{"external data directory", func() error {
			return so.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", o.ExternalDataDir)
		}})
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			return nil, fmt.Errorf("%w: setting the %s: %v", ErrRuntime, st.what, err)
		}
	}
	if dev.CUDA {
		if err := appendCUDA(so, dev, info); err != nil {
			return nil, err
		}
	}
	s, err := create(so)
	ReleaseFreedMemory()
	if err != nil {
		return nil, fmt.Errorf("%w: creating the session on %s: %v", ErrRuntime, dev, err)
	}
	return &Session{
		s:       s,
		inputs:  append([]string(nil), inputs...),
		outputs: append([]string(nil), outputs...),
	}, nil
}

// appendCUDA adds the CUDA execution provider for the device.
func appendCUDA(so *ortgo.SessionOptions, dev Device, info Info) error {
	fail := func(err error) error {
		return fmt.Errorf("%w: ONNX Runtime at %s lists the CUDA execution provider but cannot use it for %s: %v",
			ErrUnavailable, info.Path, dev, err)
	}
	co, err := ortgo.NewCUDAProviderOptions()
	if err != nil {
		return fail(err)
	}
	defer co.Destroy()
	if err := co.Update(map[string]string{"device_id": strconv.Itoa(dev.ID)}); err != nil {
		return fail(err)
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return fail(err)
	}
	return nil
}

// Run feeds one tensor per input name and returns one tensor per output name, in the order
// given at creation. Input data are read in place, not copied; outputs are fresh slices.
func (s *Session) Run(inputs []Tensor) ([]Tensor, error) {
	if len(inputs) != len(s.inputs) {
		return nil, fmt.Errorf("%w: the session has %d inputs, got %d tensors", ErrArgument, len(s.inputs), len(inputs))
	}
	in := make([]ortgo.Value, len(inputs))
	defer destroyValues(in)
	for i, t := range inputs {
		n := int64(1)
		for _, d := range t.Shape {
			if d <= 0 {
				return nil, fmt.Errorf("%w: input %q has shape %v; every dimension must be positive", ErrArgument, s.inputs[i], t.Shape)
			}
			if n > int64(len(t.Data))/d {
				n = -1 // more values than the data holds
				break
			}
			n *= d
		}
		if len(t.Shape) == 0 || n != int64(len(t.Data)) {
			return nil, fmt.Errorf("%w: input %q has shape %v but %d values", ErrArgument, s.inputs[i], t.Shape, len(t.Data))
		}
		v, err := ortgo.NewTensor(ortgo.NewShape(t.Shape...), t.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: input %q: %v", ErrRuntime, s.inputs[i], err)
		}
		in[i] = v
	}
	out := make([]ortgo.Value, len(s.outputs))
	defer destroyValues(out)
	s.mu.RLock()
	if s.s == nil {
		s.mu.RUnlock()
		return nil, fmt.Errorf("%w: Run on a closed session", ErrClosed)
	}
	err := s.s.Run(in, out)
	s.mu.RUnlock()
	runtime.KeepAlive(inputs)
	if err != nil {
		for i, v := range out {
			if _, raw := v.(*ortgo.CustomDataTensor); raw {
				return nil, fmt.Errorf("%w: output %q is not a float32 tensor (its element type, e.g. float16, is one the library does not read): %v", ErrArgument, s.outputs[i], err)
			}
		}
		return nil, fmt.Errorf("%w: %v", ErrRuntime, err)
	}
	res := make([]Tensor, len(out))
	for i, v := range out {
		t, ok := v.(*ortgo.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("%w: output %q is a %v, not a float32 tensor", ErrArgument, s.outputs[i], describe(v))
		}
		res[i] = Tensor{Shape: append([]int64(nil), t.GetShape()...), Data: t.GetData()}
	}
	return res, nil
}

// destroyValues releases the values that exist. onnxruntime_go can leave a typed nil in an
// output slot (a *CustomDataTensor it failed to build, for a float16 output), which must
// not be called.
func destroyValues(vs []ortgo.Value) {
	for _, v := range vs {
		if !isNilValue(v) {
			v.Destroy()
		}
	}
}

// isNilValue reports whether v is nil or a nil pointer in a non-nil interface.
func isNilValue(v ortgo.Value) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// describe names the kind of a non-float output for error messages.
func describe(v ortgo.Value) string {
	if isNilValue(v) {
		return "missing value"
	}
	if v.GetONNXType() == ortgo.ONNXTypeTensor {
		return fmt.Sprintf("%v tensor", ortgo.TensorElementDataType(v.DataType()))
	}
	return v.GetONNXType().String()
}

// Close releases the session, after the runs in flight finish. Later Runs fail with
// ErrClosed; a second Close does nothing.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s != nil {
		s.s.Destroy()
		s.s = nil
		ReleaseFreedMemory()
	}
}
