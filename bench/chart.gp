# Throughput and p99 latency per proxy at 1 and 2 workers, side by side.
# Called by bench/report.py:
#   gnuplot -e "data='FILE'; out='PNG'; subtitle='TEXT'" bench/chart.gp
# data columns: proxy rps_1w rps_2w p99_1w p99_2w ("?" when not measured)

set terminal pngcairo size 1100,480 font "sans,10"
set output out
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top right
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0

# With two bars per cluster and gap 1, bars sit 1/6 left and right of a tic.
left = -1.0/6
right = 1.0/6

set multiplot layout 1,2 title "portvakt, NGINX 1.22, HAProxy 2.6 (".subtitle.")"
set title "throughput, req/s (higher is better)"
plot data using 2:xtic(1) title "1 worker" lc rgb "#4472c4", \
     ''   using 3 title "2 workers" lc rgb "#ed7d31", \
     ''   using ($0+left):2:(sprintf("%.0f", $2)) with labels offset 0,0.7 notitle, \
     ''   using ($0+right):3:(sprintf("%.0f", $3)) with labels offset 0,0.7 notitle
set title "p99 latency, ms (lower is better)"
plot data using 4:xtic(1) title "1 worker" lc rgb "#4472c4", \
     ''   using 5 title "2 workers" lc rgb "#ed7d31", \
     ''   using ($0+left):4:(sprintf("%.2f", $4)) with labels offset 0,0.7 notitle, \
     ''   using ($0+right):5:(sprintf("%.2f", $5)) with labels offset 0,0.7 notitle
unset multiplot
