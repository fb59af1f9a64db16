// image.h — image files in and out, and the few transforms a lesson needs to
// turn any photo into the input a model expects.
//
// An image here is a (C, H, W) Tensor, one plane per channel, values in [0, 1]:
// exactly one example of the NCHW batches the data loaders produce (C = 1 for
// gray, C = 3 for RGB). So a photo from disk can go through the same model as
// the training images:
//
//   Tensor photo = load_image("my_shoe.jpg", 1);           // (1, H, W) gray
//   Tensor x = resize_shorter_then_crop(photo, 28, 28);    // (1, 28, 28)
//   x.reshape(Shape{1, 1, 28, 28});                        // a batch of one
//
// and a layer's output can be looked at:
//
//   save_png(image, "input.png");                    // values in [0, 1]
//   save_png_normalized(edges, "edges.png");         // any range, min..max
//
// Decoding and encoding are stb_image / stb_image_write (Debian's libstb,
// linked, not compiled in). The transforms follow torchvision's
// and PyTorch's conventions, said at each function, so that numbers can be
// compared with theirs. The CPU does all of it; these are not hot loops.
//
// Every failure throws. Anything to do with a file is a std::runtime_error
// that names the file and what is wrong ("load_image: cat.png: cannot decode
// the image (stb_image: ...)"; "save_png: out/x.png: cannot save a tensor of
// shape (2, 28, 28) as an image; ..."). A transform given a tensor that is
// not a (C, H, W) image, or an impossible size, throws std::invalid_argument.
#pragma once

#include <cstdint>
#include <string>

#include "byhand/tensor.h"

namespace byhand {

// ------------------------------------------------------------------ files
// Reads a PNG, JPEG (baseline or progressive), BMP, GIF (its first frame) or
// binary PNM (P5 gray, P6 RGB) file into a (C, H, W) tensor with values
// pixel / 255 in [0, 1].
//   channels = 0: as stored, except that alpha is DROPPED (not blended with a
//                 background): gray and gray+alpha give C = 1, RGB and RGBA
//                 give C = 3.
//   channels = 1: gray; colour is converted with to_gray() below.
//   channels = 3: RGB; a gray image is copied into all three channels.
// 16-bit PNGs and PNMs are reduced to 8 bits by stb_image.
//
// The format is told by the file's first bytes (its magic number), not by its
// name. Other formats that stb_image could decode (HDR, PSD, TGA, PIC) are
// refused, naming the formats read: their decoders are not hardened (a
// truncated HDR file makes stb_image 2.27 loop forever). Before decoding, the
// file is checked as a whole (src/image_vet.cpp): a JPEG's marker segments
// and Huffman tables, a PNG's chunk lengths and how far its pixel data
// inflates, a PNM's header; and its width x height against
// image_pixel_limit(). A damaged or hostile file is an error, never an
// out-of-bounds access, a huge allocation or an endless loop.
Tensor load_image(const std::string& path, int channels = 0);

// The largest image load_image decodes, in pixels (width x height): 2^26 =
// 67,108,864 by default (8192 x 8192; as a float (3, H, W) tensor, 768 MiB).
// An image over the limit is refused from its header, before any pixel
// memory is allocated; so is a file larger than 16 bytes per pixel of the
// limit plus 1 MiB (and than 2 GiB, which stb_image cannot address). Raise
// it to read larger images, lower it to bound what untrusted files may cost.
// The limit is one for the whole program; pixels must be >= 1.
void set_image_pixel_limit(int64_t pixels);
int64_t image_pixel_limit();

// Writes a PNG. The image is (C, H, W), (H, W) (gray) or (1, C, H, W) (a batch
// of one), with C = 1 (gray) or 3 (RGB). Values are clamped to [0, 1] and
// scaled to 0..255 (rounded to nearest), so load_image(save_png(x)) gives x back
// exactly when x holds multiples of 1/255. The file is written under a
// temporary name and renamed when complete: an existing file is replaced in
// one step, and a failure never leaves half a PNG behind.
void save_png(const Tensor& image, const std::string& path);

// Like save_png, but each channel is first stretched to the full range:
//   x' = (x - min_c) / (max_c - min_c)
// so that an output with any range (a convolution's, with negative values)
// is visible: its smallest value black, its largest white. A constant channel
// (max_c == min_c) is written as mid-gray, 0.5.
void save_png_normalized(const Tensor& image, const std::string& path);

// ------------------------------------------------------------------ transforms
// Every transform takes a (C, H, W) image and returns a new one.

// Luma from RGB with the ITU-R BT.601 weights that PIL's convert("L") and
// torchvision's Grayscale use:
//   gray = 0.299 R + 0.587 G + 0.114 B
// (3, H, W) -> (1, H, W); a (1, H, W) image is returned unchanged.
Tensor to_gray(const Tensor& image);

// Bilinear resampling to (C, out_h, out_w), with the half-pixel-centre
// convention of PyTorch's F.interpolate(mode="bilinear", align_corners=False),
// OpenCV's INTER_LINEAR and PIL: pixel i covers [i, i + 1) and its centre is at
// i + 0.5. Plain bilinear: each output pixel mixes the 2x2 input pixels around
// its centre, with no anti-aliasing (antialias=False in PyTorch), so shrinking
// by more than 2x skips input pixels; resize_shorter_then_crop() handles that.
Tensor resize_bilinear(const Tensor& image, int64_t out_h, int64_t out_w);

// Every pixel repeated as a factor x factor block: blows a 28x28 image up for
// viewing without inventing any in-between values.
Tensor upscale_nearest(const Tensor& image, int64_t factor);

// The h x w window whose top-left pixel is (top, left): (C, h, w). It must lie
// inside the image.
Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t h, int64_t w);

// The h x w window in the middle of the image. When the margin to cut is odd,
// the extra row (column) is cut at the bottom (right): top = (H - h) / 2
// rounded down. (torchvision rounds (H - h) / 2 half to even, so for an odd
// margin it can sit one pixel lower.) h and w must not exceed the image.
Tensor center_crop(const Tensor& image, int64_t h, int64_t w);

// Any image to exactly out_h x out_w without distorting it: scale it, keeping
// its aspect ratio, until it just covers out_h x out_w, then cut the middle
// (torchvision's Resize(28) + CenterCrop(28) for a square target). A large
// shrink is done as a chain of halvings (each a 2x2 average when the size is
// even) and a last bilinear step of less than 2x, so that every input pixel
// counts; the numbers are close to, not equal to, torchvision's anti-aliased
// Resize.
Tensor resize_shorter_then_crop(const Tensor& image, int64_t out_h, int64_t out_w);

}  // namespace byhand
