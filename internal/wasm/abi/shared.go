package abi

import "sync"

// SharedData is the key-value store plugins share across instances and plugins of the same
// vm_id (proxy_get_shared_data / proxy_set_shared_data), with Envoy's compare-and-swap: every
// write bumps a key's cas, and a write with a non-zero cas succeeds only if it still matches.
type SharedData struct {
	mu   sync.Mutex
	byVM map[string]map[string]*sharedValue
}

type sharedValue struct {
	value []byte
	cas   uint32
}

// NewSharedData returns an empty store; a process has one.
func NewSharedData() *SharedData { return &SharedData{byVM: map[string]map[string]*sharedValue{}} }

// Get appends the value of key to dst. ok is false if key was never set.
func (d *SharedData) Get(vm string, key []byte, dst []byte) (val []byte, cas uint32, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.byVM[vm][string(key)]
	if !ok {
		return dst, 0, false
	}
	return append(dst, v.value...), v.cas, true
}

// Set stores value under key if cas is 0 or matches the key's current cas.
func (d *SharedData) Set(vm string, key, value []byte, cas uint32) Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.byVM[vm]
	if m == nil {
		m = map[string]*sharedValue{}
		d.byVM[vm] = m
	}
	v := m[string(key)]
	if v == nil {
		v = &sharedValue{}
		m[string(key)] = v
	} else if cas != 0 && cas != v.cas {
		return StatusCasMismatch
	}
	v.value = append(v.value[:0], value...)
	v.cas++
	if v.cas == 0 { // 0 means "no cas" to the guest
		v.cas = 1
	}
	return StatusOK
}

// Queues are the shared queues of a process: registered by (vm_id, name), resolved by others,
// with their owner told when an item arrives.
type Queues struct {
	mu     sync.Mutex
	byName map[[2]string]uint32
	queues []*queue
}

type queue struct {
	items  [][]byte
	notify func(id uint32)
}

// NewQueues returns an empty set of queues.
func NewQueues() *Queues { return &Queues{byName: map[[2]string]uint32{}} }

// Register creates (or takes over) the queue vm/name; notify runs on every enqueue. IDs start
// at 1 so that 0 is never a valid queue.
func (q *Queues) Register(vm string, name []byte, notify func(uint32)) uint32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := [2]string{vm, string(name)}
	id, ok := q.byName[k]
	if !ok {
		q.queues = append(q.queues, &queue{})
		id = uint32(len(q.queues))
		q.byName[k] = id
	}
	q.queues[id-1].notify = notify
	return id
}

// Resolve finds the queue vm/name.
func (q *Queues) Resolve(vm string, name []byte) (uint32, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	id, ok := q.byName[[2]string{vm, string(name)}]
	return id, ok
}

// Enqueue adds a copy of item to queue id.
func (q *Queues) Enqueue(id uint32, item []byte) Status {
	q.mu.Lock()
	if id == 0 || int(id) > len(q.queues) {
		q.mu.Unlock()
		return StatusNotFound
	}
	qu := q.queues[id-1]
	qu.items = append(qu.items, append([]byte(nil), item...))
	notify := qu.notify
	q.mu.Unlock()
	if notify != nil {
		notify(id)
	}
	return StatusOK
}

// Dequeue appends the oldest item of queue id to dst.
func (q *Queues) Dequeue(id uint32, dst []byte) ([]byte, Status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if id == 0 || int(id) > len(q.queues) {
		return dst, StatusNotFound
	}
	qu := q.queues[id-1]
	if len(qu.items) == 0 {
		return dst, StatusEmpty
	}
	dst = append(dst, qu.items[0]...)
	qu.items[0] = nil
	qu.items = qu.items[1:]
	return dst, StatusOK
}
