package capacity

import (
	"math"
	"testing"
)

func TestFormat(t *testing.T) {
	for milli, want := range map[int64]string{
		0: "0", 1: "1m", 500: "500m", 999: "999m", 1000: "1", 1500: "1.5", 1250: "1.25", 2001: "2.001",
		64000: "64", -2000: "-2", -500: "-500m", math.MinInt64: "-9223372036854775.807",
	} {
		if got := FormatCPU(milli); got != want {
			t.Errorf("FormatCPU(%d) = %q, want %q", milli, got, want)
		}
	}
	for n, want := range map[int64]string{
		0: "0 B", 512: "512 B", 1024: "1 KiB", 1536: "1.5 KiB", 512 << 20: "512 MiB",
		int64(23.5 * (1 << 30)): "23.5 GiB", 1 << 40: "1 TiB", 10 << 40: "10 TiB", -(3 << 30): "-3 GiB",
		math.MaxInt64: "8 EiB", math.MinInt64: "-8 EiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestArithmetic(t *testing.T) {
	big := Amount{math.MaxInt64, math.MaxInt64}
	if got := big.Add(Amount{1, 1}); got != big {
		t.Errorf("Add saturates: %+v", got)
	}
	if got := (Amount{math.MinInt64, 0}).Sub(Amount{1, 0}); got.MilliCPU != math.MinInt64 {
		t.Errorf("Sub saturates: %+v", got)
	}
	if got := (Amount{0, 5}).Sub(Amount{math.MinInt64, 0}); got.MilliCPU != math.MaxInt64 || got.MemoryBytes != 5 {
		t.Errorf("Sub of MinInt64: %+v", got)
	}
	if got := (Amount{math.MaxInt64 / 2, 3}).Times(10000); got.MilliCPU != math.MaxInt64 || got.MemoryBytes != 30000 {
		t.Errorf("Times saturates: %+v", got)
	}
	if got := (Amount{-5, 0}).Times(math.MaxInt32); got.MilliCPU != -5*math.MaxInt32 {
		t.Errorf("Times of a negative: %+v", got)
	}
	for _, tc := range []struct {
		a    Amount
		pct  int
		want Amount
	}{
		{Amount{4000, 8 << 30}, 150, Amount{6000, 12 << 30}},
		{Amount{4000, 1001}, 100, Amount{4000, 1001}},
		{Amount{3, 7}, 150, Amount{4, 10}},
		{big, 1000, big},
		{big, 100, big},
	} {
		if got := tc.a.Percent(tc.pct); got != tc.want {
			t.Errorf("%+v.Percent(%d) = %+v, want %+v", tc.a, tc.pct, got, tc.want)
		}
	}
	if !(Amount{2, 0}).Exceeds(Amount{1, 0}) || (Amount{2, 5}).Exceeds(Amount{0, 5}) || (Amount{0, 6}).Exceeds(Amount{0, 0}) {
		t.Error("Exceeds: a zero figure of the limit is unknown, never exceeded")
	}
	if got := lower(Amount{4000, 0}, Amount{2000, 8}); got != (Amount{2000, 8}) {
		t.Errorf("lower = %+v", got)
	}
}
