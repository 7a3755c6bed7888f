package capacity

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Amount is an amount of CPU and memory. In a capacity, a zero figure is
// one the provider could not read: nothing is checked against it.
type Amount struct {
	MilliCPU    int64 `json:"milli_cpu"`
	MemoryBytes int64 `json:"memory_bytes"`
}

// Add returns a + b, saturating instead of overflowing.
func (a Amount) Add(b Amount) Amount {
	return Amount{satAdd(a.MilliCPU, b.MilliCPU), satAdd(a.MemoryBytes, b.MemoryBytes)}
}

// Sub returns a - b, saturating instead of overflowing.
func (a Amount) Sub(b Amount) Amount {
	return Amount{satAdd(a.MilliCPU, satNeg(b.MilliCPU)), satAdd(a.MemoryBytes, satNeg(b.MemoryBytes))}
}

// Times returns a × n, saturating instead of overflowing.
func (a Amount) Times(n int) Amount {
	return Amount{satMul(a.MilliCPU, int64(n)), satMul(a.MemoryBytes, int64(n))}
}

// Percent returns a × pct / 100, saturating.
func (a Amount) Percent(pct int) Amount {
	of := func(v int64) int64 {
		return satAdd(satMul(v/100, int64(pct)), satMul(v%100, int64(pct))/100)
	}
	return Amount{of(a.MilliCPU), of(a.MemoryBytes)}
}

// Exceeds reports whether a asks for more than limit has, in a figure the
// limit knows (a zero figure of limit is unknown and never exceeded).
func (a Amount) Exceeds(limit Amount) bool {
	return (limit.MilliCPU > 0 && a.MilliCPU > limit.MilliCPU) ||
		(limit.MemoryBytes > 0 && a.MemoryBytes > limit.MemoryBytes)
}

// IsZero reports whether both figures are zero.
func (a Amount) IsZero() bool { return a.MilliCPU == 0 && a.MemoryBytes == 0 }

// lower is the smaller of a and b in each figure, where zero is unknown.
func lower(a, b Amount) Amount {
	low := func(x, y int64) int64 {
		switch {
		case x <= 0:
			return y
		case y <= 0:
			return x
		}
		return min(x, y)
	}
	return Amount{low(a.MilliCPU, b.MilliCPU), low(a.MemoryBytes, b.MemoryBytes)}
}

func satAdd(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

func satNeg(a int64) int64 {
	if a == math.MinInt64 {
		return math.MaxInt64
	}
	return -a
}

func satMul(a, n int64) int64 {
	if a == 0 || n == 0 {
		return 0
	}
	p := a * n
	if p/n != a || (a == -1 && n == math.MinInt64) || (n == -1 && a == math.MinInt64) {
		if (a < 0) != (n < 0) {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return p
}

// FormatCPU writes millicores as the language does: "500m" below one
// core, else cores ("2", "1.5", "0" for none). Negative amounts (a
// headroom that is short) keep their sign.
func FormatCPU(milli int64) string {
	if milli < 0 {
		if milli == math.MinInt64 {
			milli++
		}
		return "-" + FormatCPU(-milli)
	}
	if milli < 1000 && milli != 0 {
		return strconv.FormatInt(milli, 10) + "m"
	}
	s := strconv.FormatInt(milli/1000, 10)
	if frac := milli % 1000; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%03d", frac), "0")
	}
	return s
}

// FormatBytes writes a size in binary units, with one decimal where it is
// not whole: "512 MiB", "23.5 GiB", "1 TiB". Negative sizes keep their
// sign.
func FormatBytes(n int64) string {
	if n < 0 {
		if n == math.MinInt64 {
			n++
		}
		return "-" + FormatBytes(-n)
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i, v := 0, float64(n)
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[i]
}
