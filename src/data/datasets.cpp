// datasets.cpp — the Dataset type and the MNIST / Fashion-MNIST loaders (data.h).
//
// Loading a data set is two jobs: FINDING the files (the user should not have
// to pass a path in the common case, and when the files are missing the error
// must say where we looked and how to get them), and READING them (idx.cpp),
// then checking that images and labels agree before anybody trains on them.
//
// Lookup, first match wins (data/README.md says the same to users):
//   Fashion-MNIST: $BYHAND_DATA/fashion-mnist, data/fashion-mnist (from the
//     current directory), <repo>/data/fashion-mnist, /usr/share/datasets/fashion-mnist
//     (Debian's dataset-fashion-mnist package).
//   MNIST: $BYHAND_DATA/mnist, data/mnist, <repo>/data/mnist,
//     <repo>/../shared/data/mnist, ../shared/data/mnist.
// <repo> is BYHAND_SOURCE_DIR, which the Makefile sets to the repository root,
// so lessons find the data wherever they are run from.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "byhand/data.h"

namespace byhand {
namespace {

namespace fs = std::filesystem;

// ------------------------------------------------------------------ copying examples
// A Dataset with the same classes as `from` and room for n examples.
Dataset empty_like(const Dataset& from, int64_t n) {
  Dataset d;
  d.images.resize(Shape{n, from.channels(), from.height(), from.width()});  // filled by the caller
  d.labels.resize(size_t(n));
  d.num_classes = from.num_classes;
  d.classes = from.classes;
  d.name = from.name;
  d.source = from.source;
  return d;
}

// Copies example `src_index` of `from` into slot `dst_index` of `to`.
void copy_example(const Dataset& from, int64_t src_index, Dataset& to, int64_t dst_index) {
  const int64_t d = from.example_numel();
  std::memcpy(to.images.data() + dst_index * d, from.images.data() + src_index * d,
              sizeof(real) * size_t(d));
  to.labels[size_t(dst_index)] = from.labels[size_t(src_index)];
}

// ------------------------------------------------------------------ finding files
const std::vector<std::string> kMnistClasses = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

// What we know about one of the two IDX data sets.
struct IdxSetInfo {
  std::string who;                  // "load_fashion_mnist", for messages
  std::string display_name;         // "Fashion-MNIST"
  std::vector<std::string> places;  // where to look, in order
  std::string how_to_get;           // the hint appended to "not found"
  std::string how_to_repair;        // the hint appended to "damaged file"
  std::vector<std::string> classes;
};

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// The search list for data set `subdir` ("mnist"), without duplicates (from
// the repository root, data/mnist and <repo>/data/mnist are the same place).
std::vector<std::string> search_places(const std::string& subdir,
                                       const std::vector<std::string>& system_places) {
  std::vector<std::string> raw;
  std::string env = env_or_empty("BYHAND_DATA");
  if (!env.empty()) raw.push_back(env + "/" + subdir);
  raw.push_back("data/" + subdir);
#ifdef BYHAND_SOURCE_DIR
  raw.push_back(std::string(BYHAND_SOURCE_DIR) + "/data/" + subdir);
#endif
  raw.insert(raw.end(), system_places.begin(), system_places.end());

  std::vector<std::string> places, seen;
  for (const std::string& p : raw) {
    std::error_code ec;
    std::string key = fs::absolute(p, ec).lexically_normal().string();
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    places.push_back(p);
  }
  return places;
}

IdxSetInfo fashion_mnist_info() {
  IdxSetInfo info;
  info.who = "load_fashion_mnist";
  info.display_name = "Fashion-MNIST";
  info.places = search_places("fashion-mnist", {"/usr/share/datasets/fashion-mnist"});
  info.how_to_get =
      "Install it with `sudo apt-get install dataset-fashion-mnist` (or `make deps`), "
      "or put the four IDX files (.gz or not) in data/fashion-mnist/ or "
      "$BYHAND_DATA/fashion-mnist/.";
  info.how_to_repair =
      "The Debian copy is restored by `sudo apt-get install --reinstall dataset-fashion-mnist`.";
  info.classes = fashion_mnist_classes();
  return info;
}

IdxSetInfo mnist_info() {
  std::vector<std::string> shared;
#ifdef BYHAND_SOURCE_DIR
  shared.push_back(std::string(BYHAND_SOURCE_DIR) + "/../shared/data/mnist");
#endif
  shared.push_back("../shared/data/mnist");
  IdxSetInfo info;
  info.who = "load_mnist";
  info.display_name = "MNIST";
  info.places = search_places("mnist", shared);
  info.how_to_get =
      "Get MNIST with `bash data/get_mnist.sh` (downloads the four files into data/mnist/ and "
      "checks their md5; `--from DIR` copies them from a local folder), or set BYHAND_DATA=DIR "
      "with the files in DIR/mnist/.";
  info.how_to_repair = "Fetch a fresh copy with `bash data/get_mnist.sh`.";
  info.classes = kMnistClasses;
  return info;
}

// "dir/name" if it exists, else "dir/name.gz" if that does, else "".
// The uncompressed file wins when both are there: it loads faster.
std::string find_idx_file(const std::string& dir, const std::string& name) {
  std::error_code ec;
  for (const std::string& candidate : {dir + "/" + name, dir + "/" + name + ".gz"})
    if (fs::is_regular_file(candidate, ec)) return candidate;
  return "";
}

std::string list_places(const std::vector<std::string>& places) {
  std::string s;
  for (const std::string& p : places) {
    std::error_code ec;
    s += "\n  " + p;
    std::string abs = fs::absolute(p, ec).lexically_normal().string();
    if (abs != p) s += "  (" + abs + ")";
    if (!fs::is_directory(p, ec)) s += "  [no such folder]";
  }
  return s;
}

struct IdxPair {
  std::string dir, images, labels;
};

// Finds the images and labels files of `split` ("train" / "test").
IdxPair find_split(const IdxSetInfo& info, const std::string& split, const std::string& dir) {
  const std::string& who = info.who;
  if (split != "train" && split != "test")
    throw std::runtime_error(who + ": unknown split \"" + split +
                             "\", expected \"train\" or \"test\"");
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string images_name = prefix + "-images-idx3-ubyte";
  const std::string labels_name = prefix + "-labels-idx1-ubyte";
  const std::vector<std::string> places = dir.empty() ? info.places : std::vector<std::string>{dir};

  std::string partial;  // the first place that has one of the two files
  for (const std::string& place : places) {
    IdxPair p{place, find_idx_file(place, images_name), find_idx_file(place, labels_name)};
    if (!p.images.empty() && !p.labels.empty()) return p;
    if (partial.empty() && (!p.images.empty() || !p.labels.empty())) {
      const std::string& found = p.images.empty() ? p.labels : p.images;
      const std::string& missing = p.images.empty() ? images_name : labels_name;
      partial = "found " + found + " but " + missing + ".gz (or " + missing + ") is missing from " +
                place + ".";
    }
  }
  std::string msg = who + "(\"" + split + "\"): " + info.display_name + " " + split + " set ";
  if (!partial.empty())
    msg += "incomplete: " + partial;
  else
    msg += "not found: no " + images_name + "(.gz) and " + labels_name + "(.gz).";
  msg += "\n" + info.how_to_get + "\nSearched:" + list_places(places);
  throw std::runtime_error(msg);
}

Dataset load_idx_set(const IdxSetInfo& info, const std::string& split, const std::string& dir) {
  IdxPair files = find_split(info, split, dir);
  try {
    Dataset d =
        load_idx_dataset(files.images, files.labels, info.classes, info.display_name + " " + split);
    d.source = files.dir;
    return d;
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string(e.what()) + "\n" + info.how_to_repair);
  }
}

}  // namespace

// ------------------------------------------------------------------ Dataset
Dataset Dataset::subset(int64_t n) const {
  if (n < 0)
    throw std::invalid_argument("Dataset::subset(" + std::to_string(n) +
                                "): the number of examples must be >= 0");
  if (n > size())
    throw std::runtime_error("Dataset::subset(" + std::to_string(n) +
                             "): " + display_name() + " has only " +
                             std::to_string(size()) + " examples");
  return slice(0, n);
}

Dataset Dataset::slice(int64_t begin, int64_t end) const {
  if (begin < 0 || begin > end || end > size())
    throw std::runtime_error("Dataset::slice(" + std::to_string(begin) + ", " +
                             std::to_string(end) +
                             "): needs 0 <= begin <= end <= " + std::to_string(size()) +
                             " (the size of " + display_name() + ")");
  Dataset d = empty_like(*this, end - begin);
  // The examples are contiguous: one memcpy for the images.
  const int64_t per = example_numel();
  if (end > begin)
    std::memcpy(d.images.data(), images.data() + begin * per,
                sizeof(real) * size_t((end - begin) * per));
  std::copy(labels.begin() + begin, labels.begin() + end, d.labels.begin());
  return d;
}

Dataset Dataset::filter_classes(const std::vector<int>& keep) const {
  check("Dataset::filter_classes");  // labels index the relabelling table below
  if (keep.empty()) throw std::runtime_error("Dataset::filter_classes: no classes to keep");
  // new_label[old] = position of `old` in keep, or -1 to drop it.
  std::vector<int> new_label(size_t(num_classes), -1);
  for (size_t i = 0; i < keep.size(); ++i) {
    int c = keep[i];
    if (c < 0 || c >= num_classes)
      throw std::runtime_error("Dataset::filter_classes: class " + std::to_string(c) +
                               " does not exist (" + display_name() +
                               " has classes 0.." + std::to_string(num_classes - 1) + ")");
    if (new_label[size_t(c)] != -1)
      throw std::runtime_error("Dataset::filter_classes: class " + std::to_string(c) +
                               " is listed twice");
    new_label[size_t(c)] = int(i);
  }
  int64_t n = 0;
  for (int y : labels) n += new_label[size_t(y)] >= 0;

  Dataset d = empty_like(*this, n);
  d.num_classes = int(keep.size());
  d.classes.clear();
  for (int c : keep)
    d.classes.push_back(size_t(c) < classes.size() ? classes[size_t(c)] : std::to_string(c));
  int64_t j = 0;
  for (int64_t i = 0; i < size(); ++i) {
    int y = new_label[size_t(labels[size_t(i)])];
    if (y < 0) continue;
    copy_example(*this, i, d, j);
    d.labels[size_t(j++)] = y;
  }
  return d;
}

std::vector<int64_t> Dataset::class_counts() const {
  std::vector<int64_t> counts(size_t(std::max(num_classes, 0)), 0);
  for (int y : labels)
    if (y >= 0 && y < num_classes) ++counts[size_t(y)];
  return counts;
}

std::string Dataset::summary() const {
  std::ostringstream s;
  s << (name.empty() ? "dataset" : name) << ": " << size() << " images ";
  if (images.rank() == 4) s << Shape{channels(), height(), width()}.str();
  s << ", " << num_classes << " classes";
  if (!source.empty()) s << ", from " << source;
  return s.str();
}

void Dataset::check(const std::string& who) const {
  const std::string what = display_name();
  if (images.rank() != 4)
    throw std::runtime_error(who + ": " + what + " has images of shape " + images.shape().str() +
                             ", expected (N, C, H, W)");
  if (images.dim(0) != size())
    throw std::runtime_error(who + ": " + what + " has " + std::to_string(images.dim(0)) +
                             " images but " + std::to_string(size()) + " labels");
  if (int64_t(classes.size()) != num_classes)
    throw std::runtime_error(who + ": " + what +
                             " has num_classes = " + std::to_string(num_classes) + " but " +
                             std::to_string(classes.size()) + " class names");
  for (int64_t i = 0; i < size(); ++i) {
    int y = labels[size_t(i)];
    if (y < 0 || y >= num_classes)
      throw std::runtime_error(who + ": " + what + ": label " + std::to_string(y) + " of example " +
                               std::to_string(i) + " is out of range [0, " +
                               std::to_string(num_classes) + ")");
  }
}

// ------------------------------------------------------------------ loaders
const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         std::vector<std::string> classes, const std::string& name) {
  Dataset d;
  d.images = read_idx_images(images_path);
  d.labels = read_idx_labels(labels_path);
  if (d.images.dim(0) != d.size())
    throw std::runtime_error("images and labels do not match: " + images_path + " has " +
                             std::to_string(d.images.dim(0)) + " images but " + labels_path +
                             " has " + std::to_string(d.size()) + " labels");
  if (classes.empty()) {  // no names given: one class per label value seen
    int max_label = d.labels.empty() ? -1 : *std::max_element(d.labels.begin(), d.labels.end());
    for (int c = 0; c <= max_label; ++c) classes.push_back(std::to_string(c));
  }
  d.num_classes = int(classes.size());
  d.name = name;
  for (size_t i = 0; i < d.labels.size(); ++i)
    if (d.labels[i] >= d.num_classes)
      throw std::runtime_error(labels_path + ": label " + std::to_string(d.labels[i]) +
                               " of example " + std::to_string(i) +
                               " is out of range: " + d.display_name() +
                               " has " + std::to_string(d.num_classes) + " classes, labels 0.." +
                               std::to_string(d.num_classes - 1));
  d.classes = std::move(classes);
  d.source = images_path;
  return d;
}

Dataset load_fashion_mnist(const std::string& split, const std::string& dir) {
  return load_idx_set(fashion_mnist_info(), split, dir);
}

Dataset load_mnist(const std::string& split, const std::string& dir) {
  return load_idx_set(mnist_info(), split, dir);
}

}  // namespace byhand
