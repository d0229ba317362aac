// Integration-test target in Go: uretprobes corrupt Go stacks (the runtime moves goroutine
// stacks and checks return addresses), so agtrace probes Go functions at their return
// instructions. "sum N" calls Sum(N, 3), which calls Mul for each step; "quit" ends.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

//go:noinline
func Mul(a, b int) int {
	return a * b
}

//go:noinline
func Sum(n, k int) int {
	if n <= 0 {
		return -1
	}
	total := 0
	for i := 1; i <= n; i++ {
		total += Mul(i, k)
	}
	return total
}

func main() {
	fmt.Printf("ready %d\n", os.Getpid())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 2 && f[0] == "sum" {
			n, _ := strconv.Atoi(f[1])
			fmt.Printf("sum %d\n", Sum(n, 3))
		} else if len(f) == 1 && f[0] == "quit" {
			return
		}
	}
}
