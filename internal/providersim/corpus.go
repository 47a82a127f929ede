package providersim

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
)

// names are customers in several scripts: Latin with diacritics, Cyrillic,
// Greek, Arabic, CJK, and names with emoji.
var names = [][2]string{
	{"Ana", "García"}, {"Иван", "Петров"}, {"Olga", "Смирнова"}, {"Jürgen", "Müller"},
	{"Zoë", "🦄"}, {"Дарья", "💐"}, {"Chloé", "Dubois"}, {"Ólafur", "Sigurðsson"},
	{"李", "伟"}, {"佐藤", "花子"}, {"محمد", "العلي"}, {"Νίκος", "Παπαδόπουλος"},
	{"Łukasz", "Wiśniewski"}, {"João", "Conceição"}, {"Mehmet", "Yılmaz"}, {"Алексей", "Ким"},
	{"Priya", "Sharma"}, {"Nguyễn", "Văn An"}, {"🌸 Sakura", ""}, {"Tom", "O'Brien"},
	{"Sofía", "Peña"}, {"Екатерина", "Волкова-Щукина"}, {"Kwame", "Mensah"}, {"Ингрид", "Larsen"},
}

var texts = []string{
	"Hi! Is my order on its way?",
	"Hola, ¿tienen envío a Valparaíso?",
	"Здравствуйте! Хочу вернуть товар, как это сделать?",
	"Guten Tag, die Rechnung ist doppelt abgebucht worden.",
	"Olá, vocês abrem no sábado?",
	"Bonjour, je n'arrive pas à me connecter 😕",
	"Thanks a lot 🙏🙏",
	"Can you call me back after 6pm?",
	"Order #48213 arrived damaged 📦💥",
	"Привет 👋 а скидка ещё действует?",
	"こんにちは、配送状況を教えてください。",
	"您好，请问可以开发票吗？",
	"مرحبا، هل يمكنني تغيير العنوان؟",
	"ok",
	"👍",
	"Where can I find the user manual? https://example.com/help",
	"Γεια σας, το πακέτο δεν έφτασε ακόμα.",
	"Merhaba, kargo takip numarası çalışmıyor.",
	"Is there a discount for students? 🎓",
	"Спасибо, всё получил! ❤️",
	"Please cancel my subscription.",
	"The app crashes when I open settings 🤔",
	"Can I pay with PayPal?",
	"Dzień dobry, czy mogę zmienić rozmiar?",
	"Line one\nline two\nline three",
}

var edits = []string{
	"(edited) sorry, I meant tomorrow",
	"Исправил: заказ №48214",
	"typo fixed 😅",
	"Korrektur: Rechnung 2024-117",
}

var emojis = []string{"👍", "❤️", "😂", "😮", "😢", "🙏", "🔥", "👏"}

var places = []struct {
	name, address string
	lat, lng      float64
}{
	{"Alexanderplatz", "Alexanderpl., 10178 Berlin", 52.521918, 13.413215},
	{"Красная площадь", "Москва, 109012", 55.753930, 37.620795},
	{"Shibuya Crossing", "Shibuya City, Tokyo", 35.659494, 139.700553},
	{"Plaza de Mayo", "Buenos Aires", -34.608147, -58.370226},
	{"", "", 40.689247, -74.044502},
}

var documents = []struct{ name, mime string }{
	{"invoice-2024-117.pdf", "application/pdf"},
	{"Договор поставки.pdf", "application/pdf"},
	{"photo list.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
	{"notes.txt", "text/plain"},
}

var groupTitles = []string{"Ops 🚚", "Оптовики Москва", "Família Souza", "Beta testers", "Soporte VIP", "店舗スタッフ"}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// onePool keeps one PNG encoder buffer (the zlib writer is the costly part).
type onePool struct{ b *png.EncoderBuffer }

func (p *onePool) Get() *png.EncoderBuffer  { b := p.b; p.b = nil; return b }
func (p *onePool) Put(b *png.EncoderBuffer) { p.b = b }

// pngBytes renders a small deterministic PNG.
func pngBytes(r *rand.Rand, enc *png.Encoder) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 24, 16))
	c1 := color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}
	c2 := color.RGBA{c1.B, c1.R, c1.G, 255}
	for y := 0; y < 16; y++ {
		for x := 0; x < 24; x++ {
			if (x/4+y/4)%2 == 0 {
				img.SetRGBA(x, y, c1)
			} else {
				img.SetRGBA(x, y, c2)
			}
		}
	}
	var b bytes.Buffer
	_ = enc.Encode(&b, img)
	return b.Bytes()
}

// docBytes is a small document of the given type.
func docBytes(r *rand.Rand, name, mime string) []byte {
	if mime == "application/pdf" {
		return fmt.Appendf(nil, "%%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\n%% %s %d\ntrailer<</Root 1 0 R>>\n%%%%EOF\n", name, r.IntN(1e6))
	}
	return fmt.Appendf(nil, "%s\nsimulated file %d\n", name, r.IntN(1e6))
}

// oggBytes is a short stand-in for an Opus voice note (OggS capture pattern first).
func oggBytes(r *rand.Rand) []byte {
	b := []byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00")
	for range 256 {
		b = append(b, byte(r.IntN(256)))
	}
	return b
}

func digits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	if b[0] == '0' {
		b[0] = '7'
	}
	return string(b)
}

func hexN(r *rand.Rand, n int) string {
	const h = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = h[r.IntN(16)]
	}
	return string(b)
}
