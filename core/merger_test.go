package core

import (
	"errors"
	"reflect"
	"testing"
)

func TestMergerConcat(t *testing.T) {
	a := Tensor{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}}
	b := Tensor{Shape: []int{2, 2, 1, 2}, Data: []float32{10, 11, 12, 13, 14, 15, 16, 17}}
	c := Tensor{Shape: []int{2}, Data: []float32{-1, -2}}
	got, err := ConcatMerger{}.Merge([]Tensor{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	want := Tensor{Shape: []int{2, 8}, Data: []float32{1, 2, 3, 10, 11, 12, 13, -1, 4, 5, 6, 14, 15, 16, 17, -2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	one, err := ConcatMerger{}.Merge([]Tensor{b})
	if err != nil || !reflect.DeepEqual(one.Shape, []int{2, 4}) || !reflect.DeepEqual(one.Data, b.Data) {
		t.Fatalf("single array: %v %v", one, err)
	}
	one.Data[0] = 99
	if b.Data[0] != 10 {
		t.Error("Merge aliases its input")
	}
}

func TestMergerAverage(t *testing.T) {
	// [2, 2, 2, 2]: sample 0 channel 0 = 1..4 (mean 2.5), channel 1 = 5..8 (6.5), ...
	x := NewTensor(2, 2, 2, 2)
	for i := range x.Data {
		x.Data[i] = float32(i + 1)
	}
	flat := Tensor{Shape: []int{2, 1}, Data: []float32{7, 8}}
	got, err := AverageMerger{}.Merge([]Tensor{x, flat})
	if err != nil {
		t.Fatal(err)
	}
	want := Tensor{Shape: []int{2, 3}, Data: []float32{2.5, 6.5, 7, 10.5, 14.5, 8}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
}

func TestMergerErrors(t *testing.T) {
	a := NewTensor(2, 3)
	cases := map[string]struct {
		m  Merger
		in []Tensor
	}{
		"concat nothing":        {ConcatMerger{}, nil},
		"concat row mismatch":   {ConcatMerger{}, []Tensor{a, NewTensor(3, 3)}},
		"concat zero rows":      {ConcatMerger{}, []Tensor{NewTensor(0, 3)}},
		"concat scalar":         {ConcatMerger{}, []Tensor{{Shape: []int{}, Data: []float32{1}}}},
		"concat bad length":     {ConcatMerger{}, []Tensor{{Shape: []int{2, 3}, Data: make([]float32, 5)}}},
		"concat negative":       {ConcatMerger{}, []Tensor{{Shape: []int{-2, 3}}}},
		"average 1-D":           {AverageMerger{}, []Tensor{NewTensor(4)}},
		"average empty spatial": {AverageMerger{}, []Tensor{NewTensor(2, 3, 0)}},
		"average nothing":       {AverageMerger{}, []Tensor{}},
		"average row mismatch":  {AverageMerger{}, []Tensor{a, NewTensor(1, 3)}},
	}
	for name, c := range cases {
		if _, err := c.m.Merge(c.in); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
