package main

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var samples []time.Duration
	for i := 1; i <= 100; i++ {
		samples = append(samples, time.Duration(i)*time.Millisecond)
	}
	s := summarize(samples)
	if s.N != 100 || s.Median != 50 || s.P99 != 99 || s.Min != 1 || s.Max != 100 || s.Mean != 50.5 {
		t.Fatalf("summary %+v", s)
	}
	if (summarize(nil) != Summary{}) {
		t.Fatal("empty input")
	}
}
