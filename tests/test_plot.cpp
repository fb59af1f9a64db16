// test_plot.cpp — history CSVs read back what was written, a bad row is named
// by file and line, and plots come out as real PNG files (or, without
// gnuplot, as a quiet `false`, never an exception).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "byhand/plot.h"

#include "test_helpers.h"

using namespace byhand;
using byhand_test::SetEnv;
using byhand_test::TempDir;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A made-up run of `epochs` epochs: loss falling, accuracy rising, the
// validation a little behind; no validation at all when with_val is false.
std::vector<EpochStats> fake_history(int epochs, double speed, bool with_val = true) {
  std::vector<EpochStats> h;
  for (int e = 1; e <= epochs; ++e) {
    EpochStats s;
    s.epoch = e;
    s.train_loss = 2.3 * std::exp(-speed * e);
    s.train_acc = 1 - 0.9 * std::exp(-speed * e);
    s.val_loss = with_val ? s.train_loss * 1.1 + 0.02 * e : std::nan("");
    s.val_acc = with_val ? s.train_acc - 0.01 * e : std::nan("");
    s.lr = 0.1;
    s.seconds = 0.5 * e;
    h.push_back(s);
  }
  return h;
}

// A PNG file starts with these eight bytes, whatever it shows.
bool is_png(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char head[8] = {};
  f.read(head, 8);
  return f && std::string(head, 8) == "\x89PNG\r\n\x1a\n" && fs::file_size(path) > 1000;
}

// Plotting tests need gnuplot; where it is missing they say so and pass.
bool have_gnuplot() {
  if (gnuplot_available()) return true;
  WARN("gnuplot is not installed: the PNG itself is not checked");
  return false;
}

}  // namespace

TEST_CASE("history CSV: what write_history_csv writes, read_history_csv reads back", "[plot]") {
  TempDir tmp;
  const auto written = fake_history(4, 0.5);
  write_history_csv(tmp / "h.csv", written);
  const auto read = read_history_csv(tmp / "h.csv");
  REQUIRE(read.size() == written.size());
  for (size_t i = 0; i < read.size(); ++i) {
    CHECK(read[i].epoch == written[i].epoch);
    CHECK(read[i].train_loss == Approx(written[i].train_loss).epsilon(1e-5));
    CHECK(read[i].train_acc == Approx(written[i].train_acc).epsilon(1e-5));
    CHECK(read[i].val_loss == Approx(written[i].val_loss).epsilon(1e-5));
    CHECK(read[i].val_acc == Approx(written[i].val_acc).epsilon(1e-5));
    CHECK(read[i].lr == Approx(written[i].lr));
    CHECK(read[i].seconds == Approx(written[i].seconds));
  }

  // A run without a validation set writes nan, and nan comes back.
  write_history_csv(tmp / "no_val.csv", fake_history(2, 0.5, false));
  const auto no_val = read_history_csv(tmp / "no_val.csv");
  REQUIRE(no_val.size() == 2);
  CHECK(std::isnan(no_val[1].val_loss));
  CHECK(std::isnan(no_val[1].val_acc));
}

TEST_CASE("history CSV: a bad file is named with the line that is wrong", "[plot]") {
  TempDir tmp;
  const std::string header = "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n";
  const std::string good_row = "1,2.1,0.3,2.2,0.29,0.1,1.5\n";

  write_text(tmp / "short.csv", header + good_row + "2,1.5,0.5\n");
  CHECK_THROWS_WITH(read_history_csv(tmp / "short.csv"),
                    Contains(tmp / "short.csv") && Contains("line 3") && Contains("found 3"));

  write_text(tmp / "word.csv", header + good_row + good_row + "3,1.2,0.6,oops,0.5,0.1,1.4\n");
  CHECK_THROWS_WITH(read_history_csv(tmp / "word.csv"),
                    Contains(tmp / "word.csv") && Contains("line 4") && Contains("val_loss") &&
                        Contains("'oops'"));

  write_text(tmp / "header.csv", "epoch;loss\n" + good_row);
  CHECK_THROWS_WITH(read_history_csv(tmp / "header.csv"),
                    Contains("line 1") && Contains("expected the header"));

  CHECK_THROWS_WITH(read_history_csv(tmp / "missing.csv"),
                    Contains("cannot open") && Contains(tmp / "missing.csv"));
}

TEST_CASE("plot_history draws the loss and accuracy curves as PNG files", "[plot]") {
  if (!have_gnuplot()) return;
  TempDir tmp;
  REQUIRE(plot_history(fake_history(12, 0.25), tmp / "run"));
  CHECK(is_png(tmp / "run_loss.png"));
  CHECK(is_png(tmp / "run_accuracy.png"));
  // Nothing left behind but the pictures: the temporary PNG and script are gone.
  CHECK(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator{}) == 2);

  // One epoch and no validation set (a --quick run) still makes a picture.
  REQUIRE(plot_history(fake_history(1, 0.25, false), tmp / "quick"));
  CHECK(is_png(tmp / "quick_loss.png"));
}

TEST_CASE("plot_histories puts several runs on one picture", "[plot]") {
  if (!have_gnuplot()) return;
  TempDir tmp;
  const std::vector<std::pair<std::string, std::vector<EpochStats>>> runs = {
      {"SGD (it's slow)", fake_history(8, 0.1)},
      {"SGD + momentum", fake_history(8, 0.3)},
      {"Adam", fake_history(8, 0.5)}};
  PlotOptions log_y;
  log_y.log_y = true;
  // Quotes in a label and spaces in a path reach gnuplot intact.
  REQUIRE(plot_histories(runs, tmp / "val loss.png", HistoryMetric::val_loss, "", log_y));
  CHECK(is_png(tmp / "val loss.png"));
  REQUIRE(plot_histories(runs, tmp / "val_acc.png", HistoryMetric::val_acc, "optimisers"));
  CHECK(is_png(tmp / "val_acc.png"));
}

TEST_CASE("plot_png: bad input throws, a failing gnuplot throws with its message", "[plot]") {
  if (!have_gnuplot()) return;
  TempDir tmp;
  CHECK_THROWS_WITH(plot_png(tmp / "p.png", "t", "x", "y", {{"uneven", {1, 2, 3}, {1, 2}}}),
                    Contains("uneven") && Contains("3 x values but 2 y values"));
  CHECK_THROWS_WITH(plot_png(tmp / "p.png", "t", "x", "y", {{"empty", {1, 2}, {NAN, NAN}}}),
                    Contains("nothing to draw"));

  // A stand-in "gnuplot" that answers --version but fails on a script.
  write_text(tmp / "broken_gnuplot",
             "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\necho 'no fonts today' >&2\nexit 1\n");
  fs::permissions(tmp.path / "broken_gnuplot", fs::perms::owner_all);
  SetEnv broken("BYHAND_GNUPLOT", tmp / "broken_gnuplot");
  CHECK_THROWS_WITH(plot_png(tmp / "p.png", "t", "x", "y", {{"line", {1, 2}, {3, 4}}}),
                    Contains("gnuplot failed") && Contains("no fonts today") &&
                        Contains(tmp / "p.png.gp"));
  CHECK_FALSE(fs::exists(tmp.path / "p.png"));
}

TEST_CASE("without gnuplot, plotting returns false and does not throw", "[plot]") {
  TempDir tmp;
  SetEnv missing("BYHAND_GNUPLOT", "/nonexistent/gnuplot");
  CHECK_FALSE(gnuplot_available());
  bool drew = true;
  CHECK_NOTHROW(drew = plot_history(fake_history(3, 0.5), tmp / "run"));
  CHECK_FALSE(drew);
  CHECK_NOTHROW(drew = plot_histories({{"a", fake_history(3, 0.5)}}, tmp / "a.png",
                                      HistoryMetric::train_loss));
  CHECK_FALSE(drew);
  CHECK(fs::is_empty(tmp.path));
}
