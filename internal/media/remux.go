package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Matroska/WebM element ids used by the remuxer.
const (
	idEBML            = 0x1A45DFA3
	idSegment         = 0x18538067
	idInfo            = 0x1549A966
	idTimecodeScale   = 0x2AD7B1
	idTracks          = 0x1654AE6B
	idTrackEntry      = 0xAE
	idTrackNumber     = 0xD7
	idTrackType       = 0x83
	idCodecID         = 0x86
	idCodecPrivate    = 0x63A2
	idCodecDelay      = 0x56AA
	idAudio           = 0xE1
	idSamplingFreq    = 0xB5
	idChannels        = 0x9F
	idCluster         = 0x1F43B675
	idClusterTimecode = 0xE7
	idSimpleBlock     = 0xA3
	idBlockGroup      = 0xA0
	idBlock           = 0xA1
)

// errNoOpus is returned when the input has no Opus audio track.
var errNoOpus = errors.New("webm: no Opus audio track")

// maxRemuxInput bounds the input the remuxer accepts (voice notes are small).
const maxRemuxInput = 64 << 20

type webmTrack struct {
	number       uint64
	codecID      string
	codecPrivate []byte
	codecDelayNS uint64
	channels     uint64
	sampleRate   float64
}

type opusPacket struct {
	tsNS int64 // absolute timestamp in nanoseconds
	data []byte
}

// readVint reads an EBML variable-length integer at b[0:]. keepMarker keeps the
// length marker bit (element ids). It returns the value, its width and whether
// all value bits were ones (an "unknown" size).
func readVint(b []byte, keepMarker bool) (val uint64, n int, allOnes bool, err error) {
	if len(b) == 0 {
		return 0, 0, false, io.ErrUnexpectedEOF
	}
	first := b[0]
	if first == 0 {
		return 0, 0, false, errors.New("webm: invalid vint")
	}
	n = 1
	for mask := byte(0x80); first&mask == 0; mask >>= 1 {
		n++
	}
	if n > 8 || len(b) < n {
		return 0, 0, false, io.ErrUnexpectedEOF
	}
	if keepMarker {
		val = uint64(first)
	} else {
		val = uint64(first & (0xFF >> uint(n)))
	}
	for i := 1; i < n; i++ {
		val = val<<8 | uint64(b[i])
	}
	max := uint64(1)<<(7*uint(n)) - 1
	allOnes = !keepMarker && val == max
	return val, n, allOnes, nil
}

func readUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func readFloat(b []byte) float64 {
	switch len(b) {
	case 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
	case 8:
		return math.Float64frombits(binary.BigEndian.Uint64(b))
	}
	return 0
}

// parseWebM walks the EBML tree linearly: master elements we care about are
// entered (which also copes with the unknown sizes live recorders write), all
// others are skipped by size.
func parseWebM(b []byte) (tracks []*webmTrack, packets map[uint64][]opusPacket, err error) {
	if len(b) > maxRemuxInput {
		return nil, nil, errors.New("webm: input too large")
	}
	packets = map[uint64][]opusPacket{}
	timecodeScale := uint64(1000000)
	var clusterTC uint64
	var cur *webmTrack
	sawHeader := false
	pos := 0
	for pos < len(b) {
		id, idn, _, err := readVint(b[pos:], true)
		if err != nil {
			return nil, nil, fmt.Errorf("webm: element id at %d: %w", pos, err)
		}
		size, szn, unknown, err := readVint(b[pos+idn:], false)
		if err != nil {
			return nil, nil, fmt.Errorf("webm: element size at %d: %w", pos, err)
		}
		body := pos + idn + szn
		if !sawHeader {
			if id != idEBML {
				return nil, nil, errors.New("webm: missing EBML header")
			}
			sawHeader = true
		}
		switch id {
		case idSegment, idCluster, idTracks, idAudio, idBlockGroup, idInfo:
			// Enter the master element.
			if id == idCluster {
				clusterTC = 0
			}
			pos = body
			continue
		case idTrackEntry:
			cur = &webmTrack{channels: 1, sampleRate: 48000}
			tracks = append(tracks, cur)
			pos = body
			continue
		}
		if unknown {
			return nil, nil, fmt.Errorf("webm: unknown size for element %#x", id)
		}
		if size > uint64(len(b)-body) {
			return nil, nil, fmt.Errorf("webm: element %#x truncated", id)
		}
		data := b[body : body+int(size)]
		switch id {
		case idTimecodeScale:
			if v := readUint(data); v > 0 && v <= 1e9 {
				timecodeScale = v
			}
		case idTrackNumber:
			if cur != nil {
				cur.number = readUint(data)
			}
		case idCodecID:
			if cur != nil {
				cur.codecID = string(data)
			}
		case idCodecPrivate:
			if cur != nil {
				cur.codecPrivate = data
			}
		case idCodecDelay:
			if cur != nil {
				cur.codecDelayNS = readUint(data)
			}
		case idChannels:
			if cur != nil {
				cur.channels = readUint(data)
			}
		case idSamplingFreq:
			if cur != nil {
				cur.sampleRate = readFloat(data)
			}
		case idClusterTimecode:
			clusterTC = readUint(data)
		case idSimpleBlock, idBlock:
			track, frames, rel, err := parseBlock(data)
			if err != nil {
				return nil, nil, err
			}
			ts := (int64(clusterTC) + int64(rel)) * int64(timecodeScale)
			for _, f := range frames {
				packets[track] = append(packets[track], opusPacket{tsNS: ts, data: f})
			}
		}
		pos = body + int(size)
	}
	if !sawHeader {
		return nil, nil, errors.New("webm: empty input")
	}
	return tracks, packets, nil
}

// parseBlock decodes a (Simple)Block: track number, relative timecode, flags,
// and its frames (with Xiph, fixed-size or EBML lacing).
func parseBlock(b []byte) (track uint64, frames [][]byte, rel int16, err error) {
	track, n, _, err := readVint(b, false)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("webm: block track: %w", err)
	}
	if len(b) < n+3 {
		return 0, nil, 0, errors.New("webm: block too short")
	}
	rel = int16(binary.BigEndian.Uint16(b[n:]))
	flags := b[n+2]
	p := b[n+3:]
	lacing := (flags >> 1) & 3
	if lacing == 0 {
		return track, [][]byte{p}, rel, nil
	}
	if len(p) < 1 {
		return 0, nil, 0, errors.New("webm: laced block too short")
	}
	count := int(p[0]) + 1
	p = p[1:]
	sizes := make([]int, count)
	switch lacing {
	case 1: // Xiph
		for i := 0; i < count-1; i++ {
			s := 0
			for {
				if len(p) == 0 {
					return 0, nil, 0, errors.New("webm: xiph lacing truncated")
				}
				c := p[0]
				p = p[1:]
				s += int(c)
				if c != 255 {
					break
				}
			}
			sizes[i] = s
		}
	case 3: // EBML
		v, w, _, err := readVint(p, false)
		if err != nil {
			return 0, nil, 0, fmt.Errorf("webm: ebml lacing: %w", err)
		}
		p = p[w:]
		if v > uint64(len(b)) {
			return 0, nil, 0, errors.New("webm: ebml lacing size")
		}
		sizes[0] = int(v)
		prev := int64(v)
		for i := 1; i < count-1; i++ {
			u, w, _, err := readVint(p, false)
			if err != nil {
				return 0, nil, 0, fmt.Errorf("webm: ebml lacing: %w", err)
			}
			p = p[w:]
			bias := int64(1)<<(7*uint(w)-1) - 1
			s := prev + (int64(u) - bias)
			if s < 0 || s > int64(len(b)) {
				return 0, nil, 0, errors.New("webm: ebml lacing size")
			}
			sizes[i] = int(s)
			prev = s
		}
	case 2: // fixed
		if len(p)%count != 0 {
			return 0, nil, 0, errors.New("webm: fixed lacing size mismatch")
		}
		for i := range sizes {
			sizes[i] = len(p) / count
		}
		sizes[count-1] = -1
	}
	total := 0
	for i := 0; i < count-1; i++ {
		total += sizes[i]
	}
	if total > len(p) {
		return 0, nil, 0, errors.New("webm: laced frames exceed block")
	}
	sizes[count-1] = len(p) - total
	for _, s := range sizes {
		frames = append(frames, p[:s])
		p = p[s:]
	}
	return track, frames, rel, nil
}

// opusSamples returns the number of 48 kHz samples in an Opus packet, from its
// TOC byte (RFC 6716 §3.1); 0 when the packet is malformed.
func opusSamples(pkt []byte) int {
	if len(pkt) == 0 {
		return 0
	}
	toc := pkt[0]
	cfg := toc >> 3
	var frame int
	switch {
	case cfg < 12:
		frame = [4]int{480, 960, 1920, 2880}[cfg%4]
	case cfg < 16:
		frame = [2]int{480, 960}[cfg%2]
	default:
		frame = [4]int{120, 240, 480, 960}[cfg%4]
	}
	var count int
	switch toc & 3 {
	case 0:
		count = 1
	case 1, 2:
		count = 2
	case 3:
		if len(pkt) < 2 {
			return 0
		}
		count = int(pkt[1] & 0x3F)
	}
	return frame * count
}

// WebMToOgg remuxes the Opus audio track of a WebM (Matroska) file into an
// Ogg Opus stream without re-encoding: the Opus packets are copied, the
// OpusHead comes from CodecPrivate (or is synthesised), and granule positions
// are derived from the block timestamps at 48 kHz.
func WebMToOgg(webm []byte) ([]byte, error) {
	tracks, packets, err := parseWebM(webm)
	if err != nil {
		return nil, err
	}
	var tr *webmTrack
	for _, t := range tracks {
		if t.codecID == "A_OPUS" {
			tr = t
			break
		}
	}
	if tr == nil {
		return nil, errNoOpus
	}
	head := opusHead(tr)
	preSkip := int64(binary.LittleEndian.Uint16(head[10:12]))
	w := &oggWriter{serial: 0x5041524c} // "PARL"
	w.packet(head, 0, false)
	w.flush(false)
	w.packet(opusTags(), 0, false)
	w.flush(false)
	pkts := packets[tr.number]
	var last int64 = preSkip
	var t0 int64
	if len(pkts) > 0 {
		t0 = pkts[0].tsNS
	}
	for i, p := range pkts {
		g := preSkip + (p.tsNS-t0)*48000/1e9 + int64(opusSamples(p.data))
		if g < last {
			g = last
		}
		last = g
		w.packet(p.data, g, i == len(pkts)-1)
	}
	w.flush(true)
	return w.out, nil
}

// opusHead returns the identification header: CodecPrivate when it is one,
// else one built from the track's audio settings.
func opusHead(t *webmTrack) []byte {
	if len(t.codecPrivate) >= 19 && string(t.codecPrivate[:8]) == "OpusHead" {
		return append([]byte(nil), t.codecPrivate...)
	}
	ch := t.channels
	if ch < 1 || ch > 2 {
		ch = 1
	}
	h := make([]byte, 19)
	copy(h, "OpusHead")
	h[8] = 1
	h[9] = byte(ch)
	binary.LittleEndian.PutUint16(h[10:], uint16(t.codecDelayNS*48000/1e9))
	rate := uint32(t.sampleRate)
	if rate == 0 {
		rate = 48000
	}
	binary.LittleEndian.PutUint32(h[12:], rate)
	return h
}

func opusTags() []byte {
	vendor := "parley"
	b := make([]byte, 0, 8+4+len(vendor)+4)
	b = append(b, "OpusTags"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(vendor)))
	b = append(b, vendor...)
	b = binary.LittleEndian.AppendUint32(b, 0)
	return b
}

// oggCRC is the Ogg checksum: polynomial 0x04c11db7, not reflected, init 0.
var oggTable = func() *[256]uint32 {
	var t [256]uint32
	for i := range t {
		r := uint32(i) << 24
		for j := 0; j < 8; j++ {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return &t
}

func oggCRC(table *[256]uint32, b []byte) uint32 {
	var crc uint32
	for _, c := range b {
		crc = crc<<8 ^ table[byte(crc>>24)^c]
	}
	return crc
}

// oggWriter packs packets into Ogg pages.
type oggWriter struct {
	out       []byte
	serial    uint32
	seq       uint32
	segs      []byte
	data      []byte
	granule   int64 // of the last packet completed on the pending page; -1 when none
	completed bool
	continued bool // the pending page starts with a continued packet
	started   bool
	table     *[256]uint32
	pending   int // packets completed on the pending page
}

const (
	maxPagePackets = 50
)

// packet appends one packet; granule is the stream position after it. The
// last packet is left pending so the final flush marks its page EOS.
func (w *oggWriter) packet(p []byte, granule int64, last bool) {
	rest := p
	wrote := false
	for {
		if len(w.segs) == 255 {
			// Page full: flush; the packet continues when part of it is written.
			w.emit(false, wrote)
		}
		wrote = true
		n := len(rest)
		if n >= 255 {
			w.segs = append(w.segs, 255)
			w.data = append(w.data, rest[:255]...)
			rest = rest[255:]
			continue
		}
		w.segs = append(w.segs, byte(n))
		w.data = append(w.data, rest...)
		break
	}
	w.granule = granule
	w.completed = true
	w.pending++
	if !last && (w.pending >= maxPagePackets || len(w.segs) >= 240) {
		w.flush(false)
	}
}

// flush writes the pending page (if any); eos marks the last page.
func (w *oggWriter) flush(eos bool) {
	if len(w.segs) == 0 && !eos {
		return
	}
	w.emit(eos, false)
}

// emit writes the pending segments as a page. midPacket is true when the last
// packet on this page continues on the next one.
func (w *oggWriter) emit(eos, midPacket bool) {
	if w.table == nil {
		w.table = oggTable()
	}
	var flags byte
	if w.continued {
		flags |= 0x01
	}
	if !w.started {
		flags |= 0x02
	}
	if eos {
		flags |= 0x04
	}
	granule := int64(-1)
	if w.completed {
		granule = w.granule
	}
	hdr := make([]byte, 27, 27+len(w.segs))
	copy(hdr, "OggS")
	hdr[5] = flags
	binary.LittleEndian.PutUint64(hdr[6:], uint64(granule))
	binary.LittleEndian.PutUint32(hdr[14:], w.serial)
	binary.LittleEndian.PutUint32(hdr[18:], w.seq)
	hdr[26] = byte(len(w.segs))
	hdr = append(hdr, w.segs...)
	page := append(hdr, w.data...)
	binary.LittleEndian.PutUint32(page[22:], oggCRC(w.table, page))
	w.out = append(w.out, page...)
	w.seq++
	w.started = true
	w.continued = midPacket
	w.segs = w.segs[:0]
	w.data = w.data[:0]
	w.completed = false
	w.pending = 0
}
