// image_folder.cpp — a data set from a folder of image files (data.h).
//
// The layout is torchvision's ImageFolder, the usual way to hand your own
// photos to a model:
//
//   DIR/cat/001.png           class 0 = "cat"      (class folders sorted by name)
//   DIR/cat/002.png
//   DIR/non-cat/003.png       class 1 = "non-cat"
//
// Each image is read by load_image (image.h: stb_image underneath) as one
// (C, H, W) example, the way layers want it: one plane per channel (all the R
// values, then all the G, then all the B), divided by 255 so that it lies in
// [0, 1] like the MNIST loaders' output, and is copied into the N-th slot of
// the data set's (N, C, H, W) tensor.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "byhand/data.h"
#include "byhand/image.h"

namespace byhand {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("load_image_folder: " + what);
}

bool is_hidden(const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; }

bool has_image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

// The entries of `dir` that pass `keep`, sorted by name (directory order is
// arbitrary, and the label of a class is its position in the sorted list).
template <class Keep>
std::vector<fs::path> sorted_entries(const fs::path& dir, Keep keep) {
  std::vector<fs::path> out;
  for (const fs::directory_entry& e : fs::directory_iterator(dir))
    if (!is_hidden(e.path()) && keep(e)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

struct ImageFile {
  fs::path path;
  int label;
};

// Every image under DIR/<class>/, with its label; fills the class names.
std::vector<ImageFile> list_images(const fs::path& dir, std::vector<std::string>& classes) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail(dir.string() + ": folder not found");
  if (!fs::is_directory(dir, ec)) fail(dir.string() + ": not a folder");

  std::vector<fs::path> class_dirs =
      sorted_entries(dir, [](const fs::directory_entry& e) { return e.is_directory(); });
  if (class_dirs.empty())
    fail(dir.string() +
         ": no class subfolders; expected one folder per class with the images "
         "inside, e.g. " +
         (dir / "cat" / "001.png").string());

  std::vector<ImageFile> files;
  for (const fs::path& class_dir : class_dirs) {
    std::vector<fs::path> images = sorted_entries(class_dir, [](const fs::directory_entry& e) {
      return e.is_regular_file() && has_image_extension(e.path());
    });
    if (images.empty())
      fail(class_dir.string() + ": class \"" + class_dir.filename().string() +
           "\" has no images (.png, .jpg, .jpeg or .bmp); the images must sit directly inside "
           "each class folder: DIR/<class>/<image>");
    for (const fs::path& p : images) files.push_back({p, int(classes.size())});
    classes.push_back(class_dir.filename().string());
  }
  return files;
}

}  // namespace

Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& opts) {
  if (opts.height < 0 || opts.width < 0)
    fail("ImageFolderOptions: height and width must be >= 0 (0: from the first image)");
  Dataset d;
  std::vector<ImageFile> files = list_images(dir, d.classes);
  d.num_classes = int(d.classes.size());
  // Name it by its last two folders, e.g. "catvnoncat/train".
  fs::path folder = fs::path(dir).lexically_normal();
  if (folder.filename().empty()) folder = folder.parent_path();  // a trailing '/'
  d.name = (folder.parent_path().filename() / folder.filename()).string();
  d.source = dir;

  const int64_t n = int64_t(files.size());
  const int64_t c = opts.grayscale ? 1 : 3;
  // The size comes from the options, or else from the first image.
  Tensor first = load_image(files[0].path.string(), int(c));
  const int64_t height = opts.height ? opts.height : first.dim(1);
  const int64_t width = opts.width ? opts.width : first.dim(2);
  std::string size_from = files[0].path.string();
  if (opts.height && opts.width)
    size_from = "ImageFolderOptions";
  else if (opts.height || opts.width)
    size_from = "ImageFolderOptions and " + size_from;

  d.images = Tensor(Shape{n, c, height, width});
  d.labels.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    Tensor img = i == 0 ? std::move(first) : load_image(files[size_t(i)].path.string(), int(c));
    if (img.dim(1) != height || img.dim(2) != width)
      fail(files[size_t(i)].path.string() + ": image is " + std::to_string(img.dim(1)) + "x" +
           std::to_string(img.dim(2)) + " (height x width) but " + std::to_string(height) + "x" +
           std::to_string(width) + " was expected (from " + size_from +
           "); every image of a folder must have the same size: resize them beforehand");
    std::copy(img.data(), img.data() + img.numel(), d.images.data() + i * c * height * width);
    d.labels[size_t(i)] = files[size_t(i)].label;
  }
  return d;
}

}  // namespace byhand
