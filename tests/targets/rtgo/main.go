// Integration-test target for Go runtime metrics: it does exactly the collections and starts
// exactly the goroutines it is told to, over stdin. Automatic GC is off (SetGCPercent(-1)) so
// only runtime.GC() collects, and nothing else stops the world (no ReadMemStats until "mem").
//
//	alloc MB   keep MB MiB of pointer-free memory live
//	gc N       run N full collections (runtime.GC)
//	go N       start N goroutines that wait until "release"
//	release    let them end
//	count      print runtime.NumGoroutine()
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

var keep [][]byte

func main() {
	debug.SetGCPercent(-1)
	release := make(chan struct{})
	var wg sync.WaitGroup
	fmt.Printf("ready %d\n", os.Getpid())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		n := 0
		if len(f) > 1 {
			n, _ = strconv.Atoi(f[1])
		}
		switch f[0] {
		case "alloc":
			for i := 0; i < n; i++ {
				b := make([]byte, 1<<20)
				for j := range b {
					b[j] = byte(j)
				}
				keep = append(keep, b)
			}
			fmt.Println("allocated", n)
		case "gc":
			for i := 0; i < n; i++ {
				runtime.GC()
			}
			fmt.Println("collected", n)
		case "go":
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-release
				}()
			}
			time.Sleep(10 * time.Millisecond)
			fmt.Println("goroutines", runtime.NumGoroutine())
		case "release":
			close(release)
			wg.Wait()
			release = make(chan struct{})
			time.Sleep(10 * time.Millisecond)
			fmt.Println("goroutines", runtime.NumGoroutine())
		case "count":
			fmt.Println("goroutines", runtime.NumGoroutine())
		case "quit":
			return
		}
	}
}
