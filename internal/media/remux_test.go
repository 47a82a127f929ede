package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// --- a tiny WebM muxer for tests ---

func ebmlID(id uint32) []byte {
	switch {
	case id >= 1<<24:
		return []byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	case id >= 1<<16:
		return []byte{byte(id >> 16), byte(id >> 8), byte(id)}
	case id >= 1<<8:
		return []byte{byte(id >> 8), byte(id)}
	}
	return []byte{byte(id)}
}

func ebmlSize(n int) []byte {
	// Always 8 bytes wide: valid EBML and exercises wide vints.
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(n))
	b[0] = 0x01
	return b
}

var unknownSize = []byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

func el(id uint32, body ...[]byte) []byte {
	data := bytes.Join(body, nil)
	return append(append(ebmlID(id), ebmlSize(len(data))...), data...)
}

func elUnknown(id uint32, body ...[]byte) []byte {
	return append(append(ebmlID(id), unknownSize...), bytes.Join(body, nil)...)
}

func u(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

func f64(v float64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64FromFloat(v))
	return b
}

func simpleBlock(track byte, rel int16, lacing byte, payload []byte) []byte {
	b := []byte{0x80 | track, byte(uint16(rel) >> 8), byte(rel), 0x80 | lacing<<1}
	return el(idSimpleBlock, append(b, payload...))
}

func testOpusHead(preSkip uint16, channels byte) []byte {
	h := make([]byte, 19)
	copy(h, "OpusHead")
	h[8] = 1
	h[9] = channels
	binary.LittleEndian.PutUint16(h[10:], preSkip)
	binary.LittleEndian.PutUint32(h[12:], 48000)
	return h
}

// pkt returns a fake 20 ms CELT Opus packet (TOC 0xF8: config 31, one frame) of n bytes.
func pkt(n int, fill byte) []byte {
	b := bytes.Repeat([]byte{fill}, n)
	b[0] = 0xF8
	return b
}

type muxOpts struct {
	unknownSizes bool
	codecPrivate []byte
	extraVideo   bool
}

func muxWebM(o muxOpts, clusters ...[][]byte) []byte {
	header := el(idEBML, el(0x4282, []byte("webm")))
	entry := [][]byte{el(idTrackNumber, u(1)), el(idTrackType, u(2)), el(idCodecID, []byte("A_OPUS"))}
	if o.codecPrivate != nil {
		entry = append(entry, el(idCodecPrivate, o.codecPrivate))
	}
	entry = append(entry, el(idCodecDelay, u(6500000)), el(idAudio, el(idSamplingFreq, f64(48000)), el(idChannels, u(2))))
	tracks := [][]byte{}
	if o.extraVideo {
		tracks = append(tracks, el(idTrackEntry, el(idTrackNumber, u(2)), el(idCodecID, []byte("V_VP8"))))
	}
	tracks = append(tracks, el(idTrackEntry, entry...))
	seg := [][]byte{
		el(idInfo, el(idTimecodeScale, u(1000000))),
		el(0xEC, make([]byte, 10)), // Void
		el(idTracks, tracks...),
	}
	for _, c := range clusters {
		if o.unknownSizes {
			seg = append(seg, elUnknown(idCluster, c...))
		} else {
			seg = append(seg, el(idCluster, c...))
		}
	}
	if o.unknownSizes {
		return append(header, elUnknown(idSegment, seg...)...)
	}
	return append(header, el(idSegment, seg...)...)
}

// --- an Ogg reader for checking the output ---

type oggPage struct {
	flags   byte
	granule int64
	seq     uint32
	packets [][]byte // completed or partial packet pieces
}

func readOgg(t testing.TB, b []byte) (pages []oggPage, packets [][]byte) {
	t.Helper()
	table := oggTable()
	var partial []byte
	for len(b) > 0 {
		if len(b) < 27 || string(b[:4]) != "OggS" {
			t.Fatalf("bad page header")
		}
		n := int(b[26])
		hl := 27 + n
		dl := 0
		for _, s := range b[27:hl] {
			dl += int(s)
		}
		page := append([]byte(nil), b[:hl+dl]...)
		crc := binary.LittleEndian.Uint32(page[22:])
		binary.LittleEndian.PutUint32(page[22:], 0)
		if oggCRC(table, page) != crc {
			t.Fatalf("page %d: bad CRC", len(pages))
		}
		p := oggPage{flags: b[5], granule: int64(binary.LittleEndian.Uint64(b[6:])), seq: binary.LittleEndian.Uint32(b[18:])}
		data := b[hl : hl+dl]
		for _, s := range b[27:hl] {
			partial = append(partial, data[:s]...)
			data = data[s:]
			if s < 255 {
				packets = append(packets, partial)
				p.packets = append(p.packets, partial)
				partial = nil
			}
		}
		pages = append(pages, p)
		b = b[hl+dl:]
	}
	if partial != nil {
		t.Fatalf("stream ends mid-packet")
	}
	return pages, packets
}

func TestWebMToOgg(t *testing.T) {
	big := pkt(700, 7) // > 255 bytes: several lacing values
	exact := pkt(510, 9)
	tests := []struct {
		name        string
		webm        []byte
		wantPackets [][]byte
		wantPreSkip uint16
		wantGranule int64 // of the last page
	}{
		{
			name: "simple blocks, known sizes, codec private",
			webm: muxWebM(muxOpts{codecPrivate: testOpusHead(312, 2)},
				[][]byte{el(idClusterTimecode, u(0)), simpleBlock(1, 0, 0, pkt(40, 1)), simpleBlock(1, 20, 0, pkt(41, 2))},
				[][]byte{el(idClusterTimecode, u(40)), simpleBlock(1, 0, 0, big), simpleBlock(1, 20, 0, exact)}),
			wantPackets: [][]byte{pkt(40, 1), pkt(41, 2), big, exact},
			wantPreSkip: 312,
			wantGranule: 312 + 60*48 + 960,
		},
		{
			name: "unknown sizes (browser MediaRecorder), synthesised head, other track",
			webm: muxWebM(muxOpts{unknownSizes: true, extraVideo: true},
				[][]byte{el(idClusterTimecode, u(0)), simpleBlock(1, 0, 0, pkt(30, 3)), simpleBlock(2, 0, 0, []byte("video")), simpleBlock(1, 20, 0, pkt(31, 4))},
				[][]byte{el(idClusterTimecode, u(40)), simpleBlock(1, 0, 0, pkt(32, 5))}),
			wantPackets: [][]byte{pkt(30, 3), pkt(31, 4), pkt(32, 5)},
			wantPreSkip: 312, // 6.5 ms codec delay
			wantGranule: 312 + 40*48 + 960,
		},
		{
			name: "xiph and fixed lacing in block groups",
			webm: muxWebM(muxOpts{codecPrivate: testOpusHead(0, 1)},
				[][]byte{el(idClusterTimecode, u(100)),
					simpleBlock(1, 0, 1, append([]byte{2, 40, 255, 5}, append(append(pkt(40, 1), pkt(260, 2)...), pkt(10, 3)...)...)),
					el(idBlockGroup, el(idBlock, append([]byte{0x81, 0, 60, 0x80 | 2<<1}, append([]byte{1}, append(pkt(8, 4), pkt(8, 5)...)...)...))),
				}),
			wantPackets: [][]byte{pkt(40, 1), pkt(260, 2), pkt(10, 3), pkt(8, 4), pkt(8, 5)},
			wantPreSkip: 0,
			wantGranule: 60*48 + 960,
		},
		{
			name: "ebml lacing",
			webm: muxWebM(muxOpts{codecPrivate: testOpusHead(0, 1)},
				// 3 frames: sizes 20, 22 (diff +2 => 0x80|(63+2)), rest 5.
				[][]byte{el(idClusterTimecode, u(0)), simpleBlock(1, 0, 3, append([]byte{2, 0x80 | 20, 0x80 | 65}, append(append(pkt(20, 1), pkt(22, 2)...), pkt(5, 3)...)...))}),
			wantPackets: [][]byte{pkt(20, 1), pkt(22, 2), pkt(5, 3)},
			wantGranule: 960,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := WebMToOgg(tc.webm)
			if err != nil {
				t.Fatal(err)
			}
			pages, packets := readOgg(t, out)
			if len(packets) != len(tc.wantPackets)+2 {
				t.Fatalf("got %d packets, want %d", len(packets), len(tc.wantPackets)+2)
			}
			head := packets[0]
			if string(head[:8]) != "OpusHead" || binary.LittleEndian.Uint16(head[10:]) != tc.wantPreSkip {
				t.Fatalf("bad OpusHead %x", head)
			}
			if string(packets[1][:8]) != "OpusTags" {
				t.Fatalf("bad OpusTags %q", packets[1])
			}
			for i, want := range tc.wantPackets {
				if !bytes.Equal(packets[i+2], want) {
					t.Errorf("packet %d differs: got %d bytes, want %d", i, len(packets[i+2]), len(want))
				}
			}
			if pages[0].flags&0x02 == 0 || len(pages[0].packets) != 1 || len(pages[1].packets) != 1 {
				t.Errorf("headers must be alone on their pages with BOS first")
			}
			last := pages[len(pages)-1]
			if last.flags&0x04 == 0 {
				t.Errorf("last page lacks EOS")
			}
			if last.granule != tc.wantGranule {
				t.Errorf("final granule %d, want %d", last.granule, tc.wantGranule)
			}
			prev := int64(0)
			for i, p := range pages {
				if p.seq != uint32(i) {
					t.Errorf("page %d has seq %d", i, p.seq)
				}
				if p.granule != -1 && p.granule < prev {
					t.Errorf("granule goes backwards at page %d", i)
				}
				if p.granule != -1 {
					prev = p.granule
				}
			}
		})
	}
}

func TestWebMToOggManyPacketsSpanPages(t *testing.T) {
	var blocks [][]byte
	var want [][]byte
	blocks = append(blocks, el(idClusterTimecode, u(0)))
	for i := 0; i < 300; i++ {
		p := pkt(20+i%400, byte(i))
		if i == 150 {
			p = pkt(70000, 1) // spans several pages
		}
		want = append(want, p)
		blocks = append(blocks, simpleBlock(1, int16(i*20), 0, p))
	}
	out, err := WebMToOgg(muxWebM(muxOpts{codecPrivate: testOpusHead(0, 1)}, blocks))
	if err != nil {
		t.Fatal(err)
	}
	pages, packets := readOgg(t, out)
	if len(packets) != 302 {
		t.Fatalf("got %d packets", len(packets))
	}
	for i := range want {
		if !bytes.Equal(packets[i+2], want[i]) {
			t.Fatalf("packet %d differs", i)
		}
	}
	cont := 0
	for _, p := range pages {
		if p.flags&1 != 0 {
			cont++
		}
	}
	if cont == 0 {
		t.Errorf("a 70 kB packet must continue across pages")
	}
	if g := pages[len(pages)-1].granule; g != 299*960+960 {
		t.Errorf("final granule %d", g)
	}
}

func TestWebMToOggErrors(t *testing.T) {
	good := muxWebM(muxOpts{}, [][]byte{simpleBlock(1, 0, 0, pkt(10, 1))})
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not ebml", []byte("RIFF....WAVEfmt ")},
		{"truncated", good[:len(good)-4]},
		{"no opus track", el(idEBML, nil)},
		{"zero vint", []byte{0x00, 0x81}},
	}
	for _, tc := range tests {
		if _, err := WebMToOgg(tc.in); err == nil {
			t.Errorf("%s: want an error", tc.name)
		}
	}
	if _, err := WebMToOgg(el(idEBML, nil)); !errors.Is(err, errNoOpus) {
		t.Errorf("want errNoOpus, got %v", err)
	}
}

func TestOpusSamples(t *testing.T) {
	tests := []struct {
		pkt  []byte
		want int
	}{
		{[]byte{0xF8}, 960},         // CELT 20 ms
		{[]byte{0xE0}, 120},         // CELT 2.5 ms
		{[]byte{0x08 | 0x01}, 1920}, // SILK config 1 (20 ms), 2 frames
		{[]byte{0x18}, 2880},        // SILK 60 ms
		{[]byte{0x78 | 3, 3}, 2880}, // hybrid 20 ms, code 3, 3 frames
		{[]byte{0x03}, 0},           // code 3 without count byte
		{nil, 0},
	}
	for _, tc := range tests {
		if got := opusSamples(tc.pkt); got != tc.want {
			t.Errorf("opusSamples(%x) = %d, want %d", tc.pkt, got, tc.want)
		}
	}
}

func FuzzWebMToOgg(f *testing.F) {
	f.Add(muxWebM(muxOpts{codecPrivate: testOpusHead(312, 2)}, [][]byte{el(idClusterTimecode, u(0)), simpleBlock(1, 0, 0, pkt(40, 1))}))
	f.Add(muxWebM(muxOpts{unknownSizes: true}, [][]byte{simpleBlock(1, 0, 1, []byte{1, 3, 1, 2, 3, 4})}))
	f.Add(muxWebM(muxOpts{}, [][]byte{simpleBlock(1, 0, 3, []byte{2, 0x81, 0xBF, 1, 2, 3, 4})}))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := WebMToOgg(in)
		if err != nil {
			return
		}
		_, packets := readOgg(t, out)
		if len(packets) < 2 {
			t.Fatalf("output lacks headers")
		}
	})
}

func uint64FromFloat(v float64) uint64 { return math.Float64bits(v) }
