package seq_test

import (
	"context"
	"fmt"

	"github.com/seqlab/seqlab/seq"
)

func Example() {
	s := seq.NewBuffered(16)
	defer s.Close()
	for range 3 {
		id, err := s.Next(context.Background())
		if err != nil {
			panic(err)
		}
		fmt.Println(id)
	}
	r, _ := seq.NewRange(4, 10)
	fmt.Println(r, r.Len())
	// Output:
	// 1
	// 2
	// 3
	// [4,14) 10
}
