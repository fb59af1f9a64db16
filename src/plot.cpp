// plot.cpp — PNG plots through gnuplot, and reading a history CSV back (plot.h).
//
// plot_png writes one self-contained gnuplot script next to the PNG: each
// curve as an inline data block ($curve0, $curve1, ...), then the terminal,
// labels and one `plot` command. It runs `gnuplot SCRIPT`, reads what gnuplot
// printed, and on success writes the finished picture into place
// (write_file_atomically) and deletes the script; on failure it keeps the script and throws with gnuplot's
// message, so the script can be read and re-run by hand.
#include "byhand/plot.h"

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "file_util.h"

namespace byhand {

namespace {

// ---------------------------------------------------------------- running gnuplot

// $BYHAND_GNUPLOT when set (a test points it at /nonexistent), else the PATH's gnuplot.
std::string gnuplot_program() {
  const char* env = std::getenv("BYHAND_GNUPLOT");
  return env && *env ? env : "gnuplot";
}

// Quotes a word for /bin/sh: 'it'\''s' is how a shell spells it's.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Quotes text for gnuplot: a single-quoted gnuplot string doubles its quotes
// and cannot span lines.
std::string gnuplot_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "''";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out + "'";
}

// Prints the hint once per program and answers false, the value every plotting
// function returns when gnuplot is missing.
bool report_missing_gnuplot() {
  static bool reported = false;
  if (!reported) {
    reported = true;
    std::fprintf(stderr,
                 "plot: gnuplot (%s) was not found, so no PNG is drawn; the CSV files are still "
                 "written.\n"
                 "plot: install it with `sudo apt-get install gnuplot-nox` (or `make deps`), then "
                 "`make plots` draws the PNGs from the CSVs under runs/.\n",
                 gnuplot_program().c_str());
  }
  return false;
}

// Runs `gnuplot script`; returns whether it succeeded, and everything it
// printed (its errors and warnings) in `output`.
bool run_gnuplot(const std::string& script, std::string& output) {
  const std::string command = shell_quote(gnuplot_program()) + " " + shell_quote(script) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("plot: cannot start " + command);
  char buffer[512];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// ---------------------------------------------------------------- writing the script

// Tableau's ten colours (matplotlib's default cycle): distinct on screen and
// in print. The marks differ too (circle, square, triangle...), so that
// curves stay apart in grey or for colour-blind readers.
const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
const int kPointTypes[] = {7, 5, 9, 11, 13, 15};

// A tick step of 1, 2 or 5 times a power of ten that puts at most ten ticks on `range`.
double whole_number_tick_step(double range) {
  for (double power = 1;; power *= 10)
    for (double mantissa : {1.0, 2.0, 5.0})
      if (range / (mantissa * power) <= 10) return mantissa * power;
}

// Tick marks for a log axis from y_min to y_max, as a gnuplot list
// "(0.1, 0.2, 0.5, 1, ...)": 1, 2 and 5 times each power of ten when the data
// spans at most three of them, the powers alone beyond that. (gnuplot's own
// log ticks are the powers only, so a loss between 0.3 and 3 would get one label.)
std::string log_ticks(double y_min, double y_max) {
  const int lowest = int(std::floor(std::log10(y_min)));
  const int highest = int(std::ceil(std::log10(y_max)));
  const std::vector<double> mantissas =
      highest - lowest <= 3 ? std::vector<double>{1, 2, 5} : std::vector<double>{1};
  std::ostringstream ticks;
  const char* separator = "(";
  for (int power = lowest; power <= highest; ++power)
    for (double mantissa : mantissas) {
      ticks << separator << mantissa * std::pow(10.0, power);
      separator = ", ";
    }
  ticks << ")";
  return ticks.str();
}

bool drawable(double x, double y, bool log_y) {
  return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0);
}

// The gnuplot script that draws `curves` into `output_png`.
std::string gnuplot_script(const std::string& output_png, const std::string& title,
                           const std::string& xlabel, const std::string& ylabel,
                           const std::vector<Curve>& curves, const PlotOptions& options) {
  std::ostringstream gp;
  gp.precision(10);
  gp << "# Drawn by byhand's plot_png; run it again with: gnuplot THIS_FILE\n";

  // The data: one block per curve. A blank line where a point cannot be drawn
  // makes gnuplot break the line there instead of joining across the gap.
  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min;
  double y_min = x_min, y_max = x_max;
  std::vector<size_t> drawn;  // indices of the curves with at least one point
  for (size_t c = 0; c < curves.size(); ++c) {
    const Curve& curve = curves[c];
    if (curve.x.size() != curve.y.size())
      throw std::invalid_argument("plot: curve '" + curve.label + "' has " +
                                  std::to_string(curve.x.size()) + " x values but " +
                                  std::to_string(curve.y.size()) + " y values");
    bool any_point = false;
    gp << "$curve" << c << " << EOD\n";
    for (size_t i = 0; i < curve.x.size(); ++i) {
      if (!drawable(curve.x[i], curve.y[i], options.log_y)) {
        gp << '\n';
        continue;
      }
      gp << curve.x[i] << ' ' << curve.y[i] << '\n';
      x_min = std::min(x_min, curve.x[i]);
      x_max = std::max(x_max, curve.x[i]);
      y_min = std::min(y_min, curve.y[i]);
      y_max = std::max(y_max, curve.y[i]);
      any_point = true;
    }
    gp << "EOD\n";
    if (any_point) drawn.push_back(c);
  }
  if (drawn.empty())
    throw std::invalid_argument("plot: nothing to draw in " + output_png +
                                ": no curve has a finite point");

  // pngcairo draws smooth (antialiased) lines; plain png is the fallback
  // some gnuplot builds have instead.
  gp << "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
     << "  set terminal pngcairo size " << options.width << "," << options.height
     << " font 'sans,11' noenhanced\n"
     << "} else {\n"
     << "  set terminal png size " << options.width << "," << options.height << " noenhanced\n"
     << "}\n"
     << "set output " << gnuplot_quote(output_png) << "\n"
     << "set title " << gnuplot_quote(title) << "\n"
     << "set xlabel " << gnuplot_quote(xlabel) << "\n"
     << "set ylabel " << gnuplot_quote(ylabel) << "\n"
     << "set grid\n"
     << "set key outside right top Left reverse\n";  // beside the axes: never on a curve

  // A little room left and right so that the first and last marks are not
  // cut by the frame; a lone x value gets one unit each side.
  const double x_pad = x_max > x_min ? 0.03 * (x_max - x_min) : 1.0;
  gp << "set xrange [" << x_min - x_pad << ":" << x_max + x_pad << "]\n";
  if (options.integer_x)
    gp << "set xtics " << whole_number_tick_step(std::max(1.0, x_max - x_min)) << "\n";
  if (options.log_y) gp << "set logscale y\n" << "set ytics " << log_ticks(y_min, y_max) << "\n";
  // The y axis spans the data (not rounded out to the next tick, which on a
  // log axis can waste whole decades), plus a little room above and below.
  gp << "set autoscale yfix\n"
     << "set offsets 0, 0, graph 0.05, graph 0.05\n";
  // Lone points (a one-epoch run) get an axis from 0 up, not one squeezed
  // around a single value.
  if (x_min == x_max && y_min >= 0 && !options.log_y) gp << "set yrange [0:*]\n";

  // Each curve keeps the colour of its place in `curves`, so that the same
  // run has the same colour on every plot of a lesson.
  gp << "plot ";
  for (size_t c : drawn) {
    gp << (c != drawn.front() ? ", \\\n     " : "") << "$curve" << c
       << " using 1:2 with linespoints"
       << " linecolor rgb '" << kColors[c % std::size(kColors)] << "' linewidth 2"
       << " pointtype " << kPointTypes[c % std::size(kPointTypes)] << " pointsize 1"
       << " title " << gnuplot_quote(curves[c].label);
  }
  gp << "\nset output\n";  // closes (finishes) the PNG
  return gp.str();
}

// ---------------------------------------------------------------- histories

double metric_value(const EpochStats& s, HistoryMetric metric) {
  switch (metric) {
    case HistoryMetric::train_loss: return s.train_loss;
    case HistoryMetric::train_acc: return 100 * s.train_acc;
    case HistoryMetric::val_loss: return s.val_loss;
    case HistoryMetric::val_acc: return 100 * s.val_acc;
  }
  return 0;
}

std::string metric_label(HistoryMetric metric) {
  switch (metric) {
    case HistoryMetric::train_loss: return "training loss";
    case HistoryMetric::train_acc: return "training accuracy (%)";
    case HistoryMetric::val_loss: return "validation loss";
    case HistoryMetric::val_acc: return "validation accuracy (%)";
  }
  return "";
}

// One column of a history against the epoch number.
Curve history_curve(const std::string& label, const std::vector<EpochStats>& history,
                    HistoryMetric metric) {
  Curve curve{label, {}, {}};
  for (const EpochStats& s : history) {
    curve.x.push_back(s.epoch);
    curve.y.push_back(metric_value(s, metric));
  }
  return curve;
}

}  // namespace

bool gnuplot_available() {
  const std::string command = shell_quote(gnuplot_program()) + " --version >/dev/null 2>&1";
  return std::system(command.c_str()) == 0;
}

bool plot_png(const std::string& png_path, const std::string& title, const std::string& xlabel,
              const std::string& ylabel, const std::vector<Curve>& curves,
              const PlotOptions& options) {
  if (!gnuplot_available()) return report_missing_gnuplot();
  // gnuplot draws into a temporary of its own; its bytes then replace
  // png_path in one step (write_file_atomically), as every file byhand writes.
  const std::string tmp_png = temporary_path(png_path);
  const std::string script = png_path + ".gp";
  {
    std::ofstream f(script);
    f << gnuplot_script(tmp_png, title, xlabel, ylabel, curves, options);
    if (!f.flush()) throw std::runtime_error("plot: cannot write " + script);
  }
  std::string output;
  if (!run_gnuplot(script, output)) {
    std::remove(tmp_png.c_str());
    throw std::runtime_error("plot: gnuplot failed to draw " + png_path + " (the script is kept: " +
                             script + "):\n" + output);
  }
  std::string picture;
  {
    std::ifstream drawn(tmp_png, std::ios::binary);
    picture.assign(std::istreambuf_iterator<char>(drawn), std::istreambuf_iterator<char>());
  }
  std::remove(tmp_png.c_str());
  if (picture.empty())
    throw std::runtime_error("plot: gnuplot wrote no picture for " + png_path +
                             " (the script is kept: " + script + ")" +
                             (output.empty() ? "" : ":\n" + output));
  write_file_atomically(png_path, picture, "plot");
  std::remove(script.c_str());
  return true;
}

bool plot_history(const std::vector<EpochStats>& history, const std::string& png_prefix,
                  const std::string& title) {
  const std::string name =
      !title.empty() ? title : png_prefix.substr(png_prefix.find_last_of('/') + 1);
  PlotOptions options;
  options.integer_x = true;
  const bool drew =
      plot_png(png_prefix + "_loss.png", name + ": loss", "epoch", "loss",
               {history_curve("train", history, HistoryMetric::train_loss),
                history_curve("validation", history, HistoryMetric::val_loss)},
               options);
  if (!drew) return false;
  return plot_png(png_prefix + "_accuracy.png", name + ": accuracy", "epoch", "accuracy (%)",
                  {history_curve("train", history, HistoryMetric::train_acc),
                   history_curve("validation", history, HistoryMetric::val_acc)},
                  options);
}

bool plot_histories(const std::vector<std::pair<std::string, std::vector<EpochStats>>>& runs,
                    const std::string& png_path, HistoryMetric metric, const std::string& title,
                    const PlotOptions& options) {
  std::vector<Curve> curves;
  for (const auto& run : runs) curves.push_back(history_curve(run.first, run.second, metric));
  PlotOptions per_epoch = options;
  per_epoch.integer_x = true;
  return plot_png(png_path, title.empty() ? metric_label(metric) : title, "epoch",
                  metric_label(metric), curves, per_epoch);
}

std::vector<EpochStats> read_history_csv(const std::string& path) {
  static const char* const kColumns[] = {"epoch",   "train_loss", "train_acc", "val_loss",
                                         "val_acc", "lr",         "seconds"};
  const std::string header = kHistoryCsvHeader;
  std::ifstream f(path);
  if (!f) throw std::runtime_error("history: cannot open " + path);
  int line_number = 0;
  auto fail = [&](const std::string& why) {
    throw std::runtime_error("history: " + path + ", line " + std::to_string(line_number) + ": " +
                             why);
  };
  std::string line;
  auto next_line = [&]() {
    if (!std::getline(f, line)) return false;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // a file saved on Windows
    return true;
  };

  if (!next_line()) {
    line_number = 1;
    fail("the file is empty; expected the header " + header);
  }
  if (line != header) fail("expected the header " + header + ", found '" + line + "'");

  std::vector<EpochStats> history;
  while (next_line()) {
    if (line.empty()) continue;
    std::vector<std::string> fields;
    std::istringstream row(line);
    for (std::string field; std::getline(row, field, ',');) fields.push_back(field);
    if (fields.size() != std::size(kColumns))
      fail("expected 7 comma-separated values (" + header + "), found " +
           std::to_string(fields.size()) + ": '" + line + "'");
    double values[std::size(kColumns)];
    for (size_t i = 0; i < fields.size(); ++i) {
      char* end = nullptr;
      values[i] = std::strtod(fields[i].c_str(), &end);  // also reads "nan" (no validation set)
      if (fields[i].empty() || *end != '\0')
        fail(std::string("the ") + kColumns[i] + " value '" + fields[i] + "' is not a number");
    }
    if (values[0] != std::floor(values[0]) || values[0] < 1)
      fail("the epoch '" + fields[0] + "' is not a whole number from 1 up");
    EpochStats s;
    s.epoch = static_cast<int>(values[0]);
    s.train_loss = values[1];
    s.train_acc = values[2];
    s.val_loss = values[3];
    s.val_acc = values[4];
    s.lr = values[5];
    s.seconds = values[6];
    history.push_back(s);
  }
  return history;
}

}  // namespace byhand
