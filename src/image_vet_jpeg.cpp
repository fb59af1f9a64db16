// image_vet_jpeg.cpp — a JPEG's marker segments, walked and checked before
// stb_image decodes the file (image_vet.h; image_vet.cpp says why).
//
// A JPEG is SOI (FF D8) and then segments. Each starts with a marker FF xx
// and, for most markers, a 2-byte big-endian length that counts itself and
// the bytes after it:
//   FF C4       DHT  Huffman tables        FF DB  DQT  quantisation tables
//   FF C0/C1/C2 SOF  the frame: size and components (C2: progressive)
//   FF DA       SOS  a scan's header, then entropy-coded data up to the next marker
//   FF DD DRI, FF E0-EF APPn, FF FE COM, ...    FF D9 EOI: the end
// Inside entropy-coded data a 0xFF byte is followed by 00 (a stuffed 0xFF
// data byte) or by a restart marker D0-D7, both part of the data; any other
// FF xx ends it. A progressive JPEG has several scans, and DHT segments may
// sit between them, so the walk goes on to EOI, not just to the first scan.
//
// The walk finds every marker stb_image can act on. It skips, as stb_image
// does, bytes that are not 0xFF between segments, and 0xFF fill bytes, and it
// never looks inside a segment for markers; so it sees a superset of what
// stb_image sees. (Where stb_image would stop with an error, the walk goes on
// and may refuse something further on; such a file is corrupt either way.)
#include <cstdint>
#include <string>

#include "image_vet.h"

namespace byhand {
namespace {

// libjpeg's progressive script has 10 scans, and encoders stay well below
// this; each scan makes stb_image visit every block of the image again, so a
// small file of thousands of empty scans would keep it busy for minutes.
constexpr int kMaxScans = 256;

std::string hex2(unsigned v) {
  const char* digits = "0123456789ABCDEF";
  return std::string{digits[(v >> 4) & 15], digits[v & 15]};
}

class JpegWalk {
 public:
  JpegWalk(std::string_view b, const std::string& path)
      : p_(reinterpret_cast<const unsigned char*>(b.data())), size_(b.size()), path_(path) {}

  void run() {
    size_t pos = 2;  // past SOI
    for (;;) {
      while (pos < size_ && p_[pos] != 0xFF) ++pos;  // entropy-coded data, or junk
      while (pos < size_ && p_[pos] == 0xFF) ++pos;  // 0xFF and fill bytes
      if (pos >= size_)
        fail("truncated JPEG: the file ends without the end-of-image marker (FF D9)");
      const unsigned marker = p_[pos++];
      if (marker == 0x00 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // data (see top)
      if (marker == 0xD9) return finish();
      if (marker == 0xD8 || marker == 0x01) continue;  // no length; stb_image refuses them
      if (size_ - pos < 2) fail("truncated JPEG: the file ends inside marker FF " + hex2(marker));
      const size_t length = be16(pos);
      if (length < 2 || length > size_ - pos)
        fail(std::string(length < 2 ? "corrupt" : "truncated") + " JPEG: the FF " +
             hex2(marker) + " segment at byte " + std::to_string(pos - 2) + " declares " +
             std::to_string(length) + " bytes, but " + std::to_string(size_ - pos) +
             " remain");
      segment(marker, pos + 2, length - 2, pos - 2);
      pos += length;
    }
  }

 private:
  const unsigned char* p_;
  size_t size_;
  const std::string& path_;
  bool huffman_[2][4] = {};  // [DC 0 / AC 1][table id] defined by a DHT
  bool quant_[4] = {};       // defined by a DQT
  struct Component {
    unsigned id, quant_table;
    bool started;  // by a scan that writes all of its coefficients (see scan())
  };
  Component components_[4] = {};
  unsigned n_components_ = 0;  // 0 until the frame header
  bool progressive_ = false;
  int scans_ = 0;

  uint32_t be16(size_t at) const { return uint32_t(p_[at]) << 8 | p_[at + 1]; }

  [[noreturn]] void fail(const std::string& why) const { refuse_image(path_, why); }

  void segment(unsigned marker, size_t at, size_t n, size_t marker_at) {
    const std::string where = " (the FF " + hex2(marker) + " segment at byte " +
                              std::to_string(marker_at) + ")";
    if (marker == 0xC4) return huffman_tables(at, n, where);
    if (marker == 0xDB) return quantisation_tables(at, n, where);
    if (marker == 0xC0 || marker == 0xC1 || marker == 0xC2) return frame(marker, at, n, where);
    if (marker == 0xDA) return scan(at, n, where);
    if (marker >= 0xC3 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC)
      fail("a lossless, hierarchical or arithmetic-coded JPEG (marker FF " + hex2(marker) +
           "); only baseline and progressive Huffman-coded JPEGs are read");
  }

  // DHT: tables of 1 byte class (0 DC, 1 AC) << 4 | id (0-3), 16 counts of
  // codes of length 1..16, and then the sum of the counts symbols, each a
  // byte. stb_image's tables hold 256 symbols: more is the 2.27 overflow.
  void huffman_tables(size_t at, size_t n, const std::string& where) {
    const size_t end = at + n;
    while (at < end) {
      if (end - at < 17) fail("corrupt JPEG: a Huffman table is cut off" + where);
      const unsigned table_class = p_[at] >> 4, id = p_[at] & 15;
      if (table_class > 1 || id > 3)
        fail("corrupt JPEG: Huffman table class " + std::to_string(table_class) + ", id " +
             std::to_string(id) + " (class 0 or 1, id 0 to 3)" + where);
      size_t symbols = 0;
      for (int i = 1; i <= 16; ++i) symbols += p_[at + i];
      if (symbols > 256)
        fail("corrupt JPEG: a Huffman table's code counts add up to " + std::to_string(symbols) +
             " symbols, more than the 256 a table can have" + where);
      if (end - at - 17 < symbols)
        fail("corrupt JPEG: a Huffman table's symbols run past its segment" + where);
      huffman_[table_class][id] = true;
      at += 17 + symbols;
    }
  }

  // DQT: tables of 1 byte precision (0: 8-bit, 1: 16-bit) << 4 | id (0-3),
  // then 64 values of that precision.
  void quantisation_tables(size_t at, size_t n, const std::string& where) {
    const size_t end = at + n;
    while (at < end) {
      const unsigned precision = p_[at] >> 4, id = p_[at] & 15;
      if (precision > 1 || id > 3)
        fail("corrupt JPEG: quantisation table precision " + std::to_string(precision) +
             ", id " + std::to_string(id) + where);
      const size_t bytes = 1 + 64 * (precision + 1);
      if (end - at < bytes) fail("corrupt JPEG: a quantisation table is cut off" + where);
      quant_[id] = true;
      at += bytes;
    }
  }

  // SOF: precision, height, width (2 bytes each but precision), the number
  // of components, and for each its id, sampling factors and quantisation table.
  void frame(unsigned marker, size_t at, size_t n, const std::string& where) {
    if (n_components_ > 0) fail("corrupt JPEG: a second frame header" + where);
    if (n < 6 || p_[at + 5] < 1 || p_[at + 5] > 4 || n != 6 + 3 * size_t(p_[at + 5]))
      fail("corrupt JPEG: a frame header of " + std::to_string(n + 2) + " bytes" + where);
    n_components_ = p_[at + 5];
    progressive_ = marker == 0xC2;
    for (unsigned c = 0; c < n_components_; ++c)
      components_[c] = {p_[at + 6 + 3 * c], p_[at + 8 + 3 * c], false};
  }

  // SOS: the number of components, for each its id and the DC << 4 | AC
  // Huffman tables it uses, then the spectral band Ss..Se and the successive
  // approximation bits Ah << 4 | Al. Every table the scan will use must have
  // been defined (stb_image 2.27 would read its uninitialised memory).
  void scan(size_t at, size_t n, const std::string& where) {
    if (n_components_ == 0) fail("corrupt JPEG: a scan before the frame header" + where);
    if (++scans_ > kMaxScans)
      fail("more than " + std::to_string(kMaxScans) + " scans; no encoder writes that many");
    const unsigned count = n >= 1 ? p_[at] : 0;
    if (count < 1 || count > n_components_ || n != 4 + 2 * size_t(count))
      fail("corrupt JPEG: a scan header of " + std::to_string(n + 2) + " bytes" + where);
    const size_t band = at + 1 + 2 * count;
    const unsigned first = p_[band], high_bits = p_[band + 2] >> 4;  // Ss, Ah
    const bool dc_scan = !progressive_ || first == 0, ac_scan = !progressive_ || first > 0;
    for (unsigned i = 0; i < count; ++i) {
      const unsigned id = p_[at + 1 + 2 * i], dc = p_[at + 2 + 2 * i] >> 4,
                     ac = p_[at + 2 + 2 * i] & 15;
      Component* comp = nullptr;
      for (unsigned c = 0; c < n_components_; ++c)
        if (components_[c].id == id) comp = &components_[c];
      if (!comp || dc > 3 || ac > 3 || comp->quant_table > 3)
        fail("corrupt JPEG: a scan names component " + std::to_string(id) +
             ", which the frame does not have, or a table id past 3" + where);
      if (!quant_[comp->quant_table])
        fail("corrupt JPEG: component " + std::to_string(id) + " uses quantisation table " +
             std::to_string(comp->quant_table) + ", which no DQT segment defined" + where);
      const bool needs_dc = dc_scan && (!progressive_ || high_bits == 0);
      if ((needs_dc && !huffman_[0][dc]) || (ac_scan && !huffman_[1][ac]))
        fail("corrupt JPEG: a scan uses a Huffman table that no DHT segment defined" + where);
      // stb_image 2.27 does not clear its coefficient buffers. A sequential
      // scan writes all 64 coefficients of every block it decodes; in a
      // progressive JPEG the first DC scan (first 0, high_bits 0) clears each
      // block, and every other scan only adds to what is there. So, as the
      // standard requires, a component's first DC scan must come before its
      // other scans.
      if (!progressive_ || (first == 0 && high_bits == 0)) comp->started = true;
      else if (!comp->started)
        fail("corrupt JPEG: a scan adds to component " + std::to_string(id) +
             " before its first DC scan (stb_image would start from uninitialised memory)" +
             where);
    }
  }

  // At EOI every component must have been started by a scan (see scan()):
  // the pixels of one that was not would be uninitialised memory.
  void finish() const {
    if (n_components_ == 0) fail("corrupt JPEG: no frame header before the end of the image");
    for (unsigned c = 0; c < n_components_; ++c)
      if (!components_[c].started)
        fail("corrupt JPEG: no scan gives component " + std::to_string(components_[c].id) +
             (scans_ == 0 ? std::string(" (there are no scans)") : " (no first DC scan)"));
  }
};

}  // namespace

void vet_jpeg(std::string_view bytes, const std::string& path) { JpegWalk(bytes, path).run(); }

}  // namespace byhand
