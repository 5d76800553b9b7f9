package route

import "sync/atomic"

// Slot holds the route table in force for one route configuration name. A connection
// manager keeps the Slot, not the table, and each stream loads the table once at its start:
// a route change then reaches new streams on connections that are already open, without
// touching the listener.
type Slot struct{ cur atomic.Pointer[Table] }

// Load returns the table in force (nil before the first Store).
func (s *Slot) Load() *Table { return s.cur.Load() }

// Store publishes t and returns the previous table.
func (s *Slot) Store(t *Table) *Table { return s.cur.Swap(t) }
