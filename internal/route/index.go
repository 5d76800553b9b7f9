package route

import (
	"slices"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// linearMax is the route count up to which a virtual host is scanned in order without an index:
// below it the index costs more than it saves.
const linearMax = 8

// maxLists bounds how many candidate lists one lookup merges on the stack. A path that meets
// more index nodes holding routes than this falls back to an in-order scan, which is slower
// but still correct.
const maxLists = 24

// pathIndex narrows the routes a request must be tested against while keeping first-match
// order exact.
//
// Every route has a literal: lower-cased text that each path it matches starts with, ignoring
// case (the prefix or exact path itself, a template's text before its first variable, a
// regex's leading literal, or "" when nothing is known). The literals form a radix tree whose
// nodes hold the indices of the routes whose literal ends there, in route order. Walking the
// tree along the lower-cased request path visits exactly the nodes whose literal is a prefix
// of the path; only their routes can match. Merging those sorted lists by index and testing
// each candidate in turn yields the first matching route, as a linear scan would.
type pathIndex struct {
	root *pnode // nil when the virtual host is scanned linearly
}

type pnode struct {
	label    string // lower-cased edge text leading to this node
	routes   []int32
	first    []byte // first byte of each child's label, sorted
	children []*pnode
}

func buildPathIndex(routes []*Entry) pathIndex {
	if len(routes) <= linearMax {
		return pathIndex{}
	}
	root := &pnode{}
	for i, e := range routes {
		root.insert(e.match.literal, int32(i))
	}
	return pathIndex{root: root}
}

func (n *pnode) insert(key string, idx int32) {
	for {
		if key == "" {
			n.routes = append(n.routes, idx)
			return
		}
		i, found := slices.BinarySearch(n.first, key[0])
		if !found {
			n.first = slices.Insert(n.first, i, key[0])
			n.children = slices.Insert(n.children, i, &pnode{label: key, routes: []int32{idx}})
			return
		}
		c := n.children[i]
		common := 0
		for common < len(c.label) && common < len(key) && c.label[common] == key[common] {
			common++
		}
		if common < len(c.label) {
			// Split c: a new node for the shared part, with c below it.
			mid := &pnode{label: c.label[:common], first: []byte{c.label[common]}, children: []*pnode{c}}
			c.label = c.label[common:]
			n.children[i] = mid
			c = mid
		}
		n, key = c, key[common:]
	}
}

// first returns the index of the first route matching the request, or -1.
func (x *pathIndex) first(routes []*Entry, path string, h *header.Map) int {
	if x.root == nil {
		return scan(routes, path, h)
	}
	var listsBuf [maxLists][]int32
	lists := listsBuf[:0]
	n := x.root
	rest := path
	for {
		if len(n.routes) > 0 {
			if len(lists) == maxLists {
				return scan(routes, path, h)
			}
			lists = append(lists, n.routes)
		}
		if rest == "" {
			break
		}
		c := n.child(lower(rest[0]))
		if c == nil || len(c.label) > len(rest) || !hasLowerPrefix(rest, c.label) {
			break
		}
		n, rest = c, rest[len(c.label):]
	}
	switch len(lists) {
	case 0:
		return -1
	case 1:
		for _, i := range lists[0] {
			if routes[i].match.matches(path, h) {
				return int(i)
			}
		}
		return -1
	}
	var posBuf [maxLists]int
	pos := posBuf[:len(lists)]
	for {
		best, which := int32(-1), -1
		for j, l := range lists {
			if pos[j] < len(l) && (which < 0 || l[pos[j]] < best) {
				best, which = l[pos[j]], j
			}
		}
		if which < 0 {
			return -1
		}
		pos[which]++
		if routes[best].match.matches(path, h) {
			return int(best)
		}
	}
}

func (n *pnode) child(c byte) *pnode {
	if len(n.first) > 8 {
		if i, ok := slices.BinarySearch(n.first, c); ok {
			return n.children[i]
		}
		return nil
	}
	// Most nodes have few children, where a linear scan beats a binary search.
	for i, f := range n.first {
		if f == c {
			return n.children[i]
		}
		if f > c {
			break
		}
	}
	return nil
}

// hasLowerPrefix reports whether s starts with the lower-case prefix, ignoring ASCII case in s.
func hasLowerPrefix(s, prefix string) bool {
	for i := 0; i < len(prefix); i++ {
		if lower(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

func scan(routes []*Entry, path string, h *header.Map) int {
	for i, e := range routes {
		if e.match.matches(path, h) {
			return i
		}
	}
	return -1
}
