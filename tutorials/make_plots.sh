#!/usr/bin/env bash
# make_plots.sh — draws every training history under runs/ as PNG pictures.
#
#   bash tutorials/make_plots.sh [DIR...]      (what `make plots` runs; DIR defaults to runs)
#
# A lesson run with --history (or any CSV written by write_history_csv, with
# the header epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds) becomes
# two pictures beside it, the same ones plot_history() draws from C++:
#   runs/03_mlp/history.csv  ->  runs/03_mlp/history_loss.png
#                                runs/03_mlp/history_accuracy.png
# Pictures newer than their CSV are left alone; other CSV files are skipped.
# Only bash and gnuplot are needed, so this works on CSVs copied from a
# machine that had no gnuplot ($BYHAND_GNUPLOT picks another gnuplot program).
set -eu

gnuplot=${BYHAND_GNUPLOT:-gnuplot}
if ! "$gnuplot" --version >/dev/null 2>&1; then
  echo "plots: gnuplot ($gnuplot) was not found." >&2
  echo "plots: install it with \`sudo apt-get install gnuplot-nox\` (or \`make deps\`)." >&2
  exit 1
fi
[ $# -eq 0 ] && set -- runs

header="epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds"

# The gnuplot program: draws one column pair of one CSV. Its arguments
# (ARG1..ARG7 inside gnuplot) are
#   CSV  PNG  TITLE  YLABEL  TRAIN_COLUMN  VAL_COLUMN (0: none)  SCALE
# The styling follows src/plot.cpp: Tableau colours, a mark per epoch, the
# legend beside the axes, whole-number epoch ticks.
program=$(mktemp --suffix=.gp)
trap 'rm -f "$program"' EXIT
cat >"$program" <<'GNUPLOT'
csv = ARG1; png = ARG2; scale = real(ARG7)
train_column = int(ARG5); val_column = int(ARG6)
set datafile separator ','
stats csv using 1 skip 1 nooutput
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
  set terminal pngcairo size 800,500 font 'sans,11' noenhanced
} else {
  set terminal png size 800,500 noenhanced
}
set output png
set title ARG3
set xlabel 'epoch'
set ylabel ARG4
set grid
set key outside right top Left reverse
pad = STATS_max > STATS_min ? 0.03 * (STATS_max - STATS_min) : 1
set xrange [STATS_min - pad : STATS_max + pad]
if (STATS_max - STATS_min <= 10) { set xtics 1 }
set autoscale yfix
if (STATS_records == 1) { set yrange [0:*] }  # one epoch: one point, drawn from 0 up
set offsets 0, 0, graph 0.05, graph 0.05
style = 'with linespoints linewidth 2 pointsize 1'
if (val_column > 0) {
  plot csv using 1:(column(train_column) * scale) skip 1 @style linecolor rgb '#1f77b4' pointtype 7 title 'train', \
       csv using 1:(column(val_column) * scale) skip 1 @style linecolor rgb '#ff7f0e' pointtype 5 title 'validation'
} else {
  plot csv using 1:(column(train_column) * scale) skip 1 @style linecolor rgb '#1f77b4' pointtype 7 title 'train'
}
set output
GNUPLOT

# draw CSV PNG TITLE YLABEL TRAIN_COLUMN VAL_COLUMN SCALE: into PNG.tmp, then renamed.
draw() {
  local png=$2
  "$gnuplot" -c "$program" "$1" "$png.tmp" "$3" "$4" "$5" "$6" "$7"
  mv -f "$png.tmp" "$png"
}

drawn=0
while IFS= read -r -d '' csv; do
  if [ "$(head -n 1 "$csv" | tr -d '\r')" != "$header" ]; then
    echo "plots: skipped $csv (not a training history)"
    continue
  fi
  if [ "$(wc -l <"$csv")" -lt 2 ]; then
    echo "plots: skipped $csv (no epochs yet)"
    continue
  fi
  prefix=${csv%.csv}
  if [ "${prefix}_loss.png" -nt "$csv" ] && [ "${prefix}_accuracy.png" -nt "$csv" ]; then
    continue
  fi
  # Columns 4 and 5 hold "nan" when the run had no validation set.
  val_loss=0 val_acc=0
  if awk -F, 'NR > 1 && tolower($4) !~ /nan/ { found = 1; exit } END { exit !found }' "$csv"; then
    val_loss=4 val_acc=5
  fi
  name=${prefix#./}
  draw "$csv" "${prefix}_loss.png" "$name: loss" "loss" 2 $val_loss 1
  draw "$csv" "${prefix}_accuracy.png" "$name: accuracy" "accuracy (%)" 3 $val_acc 100
  echo "plots: ${prefix}_loss.png, ${prefix}_accuracy.png"
  drawn=$((drawn + 1))
done < <(find "$@" -name '*.csv' -type f -print0 2>/dev/null | sort -z)
echo "plots: $drawn histories drawn"
