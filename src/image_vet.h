// image_vet.h — internal: what load_image (image.cpp) checks in a file's
// bytes before stb_image parses any of them, and why (image_vet.cpp).
//
// Every refusal is a std::runtime_error that reads
//     "load_image: <path>: cannot decode: <what is wrong>"
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace byhand {

// The formats load_image reads (image.h).
enum class ImageFormat { Png, Jpeg, Bmp, Gif, Pnm };

// "PNG", "JPEG", "BMP", "GIF", "PNM".
const char* image_format_name(ImageFormat format);

// The format, told by the file's first bytes (its magic number), never by
// its name. Anything else is refused, saying what it looks like when that can
// be told (a Radiance HDR, a Photoshop file, a text-format PNM, ...).
ImageFormat sniff_image_format(std::string_view bytes, const std::string& path);

// Walks the file's structure without decoding it and refuses what would make
// stb_image 2.27 write out of bounds, read memory it never wrote, allocate far
// more than the file can fill, or loop without end (image_vet.cpp lists each
// case). For PNG it also checks the pixel limit, from the IHDR chunk, before
// it counts how far the compressed pixel data inflates.
// Returns the bytes to decode instead when the file needs a harmless repair
// before stb_image sees it (a PNG's short palette, widened), "" otherwise.
std::string vet_image_bytes(ImageFormat format, std::string_view bytes, const std::string& path,
                            int64_t pixel_limit);

// Refuses a width x height image of more than `pixel_limit` pixels, or of none.
void check_pixel_count(int64_t width, int64_t height, int64_t pixel_limit,
                       const std::string& path);

// The pieces vet_image_bytes is made of.
// Throws std::runtime_error("load_image: <path>: cannot decode: <why>").
[[noreturn]] void refuse_image(const std::string& path, const std::string& why);
// One per format: image_vet_jpeg.cpp, image_vet_png.cpp, image_vet_bmp.cpp.
void vet_jpeg(std::string_view bytes, const std::string& path);
std::string vet_png(std::string_view bytes, const std::string& path, int64_t pixel_limit);
void vet_bmp(std::string_view bytes, const std::string& path);

}  // namespace byhand
