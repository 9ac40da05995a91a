package modbus

import "sort"

// Protocol limits per request.
const (
	maxReadRegisters = 125
	maxReadBits      = 2000
)

// read is one request of a poll plan and the fields it serves.
type read struct {
	table  Table
	start  int
	qty    int
	fields []*Register
}

// plan coalesces a device's fields into the fewest reads: fields of one
// table merge while the span stays within the protocol limit and the hole
// between them is at most maxGap addresses.
func plan(regs []Register, maxGap int) []*read {
	byTable := map[Table][]*Register{}
	for i := range regs {
		byTable[regs[i].Table] = append(byTable[regs[i].Table], &regs[i])
	}
	var out []*read
	for _, t := range []Table{Coil, DiscreteInput, HoldingRegister, InputRegister} {
		fs := byTable[t]
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].Address < fs[j].Address })
		limit := maxReadRegisters
		if t.bits() {
			limit = maxReadBits
		}
		var cur *read
		for _, f := range fs {
			end := f.Address + f.width()
			if cur != nil && f.Address-(cur.start+cur.qty) <= maxGap && end-cur.start <= limit {
				if end > cur.start+cur.qty {
					cur.qty = end - cur.start
				}
				cur.fields = append(cur.fields, f)
				continue
			}
			cur = &read{table: t, start: f.Address, qty: f.width(), fields: []*Register{f}}
			out = append(out, cur)
		}
	}
	return out
}

// split breaks a read into one read per distinct address range, for devices
// that refuse a coalesced read (exception 2 or 3: a hole in their map).
func split(r *read) []*read {
	var out []*read
	for _, f := range r.fields {
		if n := len(out); n > 0 && out[n-1].start == f.Address && out[n-1].qty == f.width() {
			out[n-1].fields = append(out[n-1].fields, f) // bits of one register
			continue
		}
		out = append(out, &read{table: r.table, start: f.Address, qty: f.width(), fields: []*Register{f}})
	}
	return out
}

// slice returns the bytes of field f within a read's response, or nil when
// the response is too short to hold them (Decode reports nil as bad).
func (r *read) slice(resp []byte, f *Register) []byte {
	if r.table.bits() {
		bit := f.Address - r.start
		if bit < 0 || bit/8 >= len(resp) {
			return nil
		}
		if resp[bit/8]>>(uint(bit%8))&1 == 1 {
			return []byte{1}
		}
		return []byte{0}
	}
	off := (f.Address - r.start) * 2
	end := off + 2*f.width()
	if off < 0 || end > len(resp) {
		return nil
	}
	return resp[off:end]
}

// respLen is the byte length a correct response to r carries.
func (r *read) respLen() int {
	if r.table.bits() {
		return (r.qty + 7) / 8
	}
	return r.qty * 2
}
