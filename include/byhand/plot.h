// plot.h — training curves as PNG pictures, drawn by gnuplot.
//
// A lesson's numbers are easier to believe as a picture: the loss falling,
// the validation accuracy flattening out while the training accuracy keeps
// climbing (overfitting), one initialisation learning and another stuck.
// byhand does not rasterise anything itself; it writes a small gnuplot script
// (the data inline) and runs gnuplot, the plotting program Debian ships as
// `gnuplot-nox`. The script is plain text, so when a plot fails the error
// names the script that was kept, and you can run it yourself.
//
// gnuplot is optional. When it is missing, every function here prints once
// how to install it and returns false instead of throwing: the lesson carries
// on and still writes its history CSV, which `make plots` (or
// read_history_csv + plot_history) turns into pictures later. When gnuplot is
// there but fails, the functions throw with gnuplot's own error message.
//
// The program run is $BYHAND_GNUPLOT when that is set, else `gnuplot` on the
// PATH (BYHAND_GNUPLOT=/nonexistent pretends it is missing).
//
// Every PNG is drawn into a temporary file and then written over its path in
// one step (write then rename, as checkpoints are), so an image viewer never
// catches half a picture, and a failure leaves the previous picture and no
// temporary behind.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "byhand/train.h"

namespace byhand {

// One line on a plot: points (x[i], y[i]) joined in order, with a mark at
// each point. A non-finite y (NaN: no validation set, say) leaves a gap.
struct Curve {
  std::string label;  // its entry in the legend
  std::vector<double> x, y;
};

struct PlotOptions {
  bool log_y = false;      // logarithmic y axis (points with y <= 0 are left out)
  bool integer_x = false;  // x ticks on whole numbers only (epochs)
  int width = 800, height = 500;  // pixels
};

// Whether the gnuplot program can be run.
bool gnuplot_available();

// Draws `curves` on one set of axes into the PNG at `png_path`. Returns false
// (after a one-time hint on stderr) when gnuplot is missing; throws
// std::invalid_argument when there is nothing to draw or x and y differ in
// length, std::runtime_error when gnuplot fails.
bool plot_png(const std::string& png_path, const std::string& title, const std::string& xlabel,
              const std::string& ylabel, const std::vector<Curve>& curves,
              const PlotOptions& options = {});

// The two pictures of one training run:
//   <png_prefix>_loss.png      train and validation loss per epoch
//   <png_prefix>_accuracy.png  train and validation accuracy (%) per epoch
// The validation curves are left out when the run had no validation set.
// `title` heads both (default: the file name part of png_prefix).
bool plot_history(const std::vector<EpochStats>& history, const std::string& png_prefix,
                  const std::string& title = "");

// The column of a history that plot_histories compares.
enum class HistoryMetric { train_loss, train_acc, val_loss, val_acc };

// Several runs on one picture, one curve per run, labelled with its name:
// the lessons that compare initialisations, optimisers or regularisers.
// Accuracies are drawn in %. `title` defaults to the metric's name.
bool plot_histories(const std::vector<std::pair<std::string, std::vector<EpochStats>>>& runs,
                    const std::string& png_path, HistoryMetric metric,
                    const std::string& title = "", const PlotOptions& options = {});

// Reads a CSV written by write_history_csv (train.h). Throws
// std::runtime_error naming the file and the line of the first bad row.
std::vector<EpochStats> read_history_csv(const std::string& path);

}  // namespace byhand
