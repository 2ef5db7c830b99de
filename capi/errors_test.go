package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/libpatchcore/libpatchcore/core"
)

// Every error kind of package core reaches the C caller as its own status code.
func TestStatusOfErrorKinds(t *testing.T) {
	cases := []struct {
		err  error
		want int32
	}{
		{nil, int32(statusOK)},
		{core.ErrInvalidArgument, int32(statusInvalidArgument)},
		{core.ErrState, int32(statusInvalidState)},
		{core.ErrFormat, int32(statusFormat)},
		{core.ErrIO, int32(statusIO)},
		{core.ErrUnsupported, int32(statusUnsupported)},
		{core.ErrBackend, int32(statusBackend)},
		{core.ErrOutOfMemory, int32(statusOutOfMemory)},
		{core.ErrInternal, int32(statusInternal)},
		{errors.New("unclassified"), int32(statusInternal)},
		{errorf(statusBufferTooSmall, "explicit"), int32(statusBufferTooSmall)},
	}
	for _, c := range cases {
		err := c.err
		if err != nil {
			err = fmt.Errorf("context: %w", err)
		}
		if got := int32(statusOf(err)); got != c.want {
			t.Errorf("%v: status %d, want %d", err, got, c.want)
		}
	}
}
