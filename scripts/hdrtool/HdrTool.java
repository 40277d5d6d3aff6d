// Reference oracle for the stats module: runs the real Java HdrHistogram
// (Debian libhdrhistogram-java, 2.1.11) so fixtures and log checks come from
// the upstream implementation rather than from our own Rust code.
//
// Build: javac -cp /usr/share/java/hdrhistogram.jar -d /tmp/hdrtool scripts/hdrtool/HdrTool.java
// Usage:
//   java -cp /usr/share/java/hdrhistogram.jar:/tmp/hdrtool HdrTool hgrm TICKS SCALING < pairs
//       stdin: lines "value count" (or just "value"); prints outputPercentileDistribution.
//   java ... HdrTool hgrm-multi TICKS SCALING < blocks
//       like hgrm for several data sets separated by "---" lines; outputs are
//       separated by "---" lines too (one JVM start for many comparisons).
//   java ... HdrTool hlog-read FILE
//       reads an interval log with HistogramLogReader, prints a JSON summary.
//   java ... HdrTool hlog-write START_MSEC < pairs
//       writes a reference log with HistogramLogWriter (one interval, tag "t").
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.HdrHistogram.EncodableHistogram;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogReader;
import org.HdrHistogram.HistogramLogWriter;

public class HdrTool {
    static final BufferedReader STDIN = new BufferedReader(new InputStreamReader(System.in));
    static boolean sawSeparator;

    // Reads "value [count]" lines up to EOF or a "---" separator.
    static Histogram readPairs() throws Exception {
        Histogram h = new Histogram(1L, 60_000_000_000L, 3);
        sawSeparator = false;
        String line;
        while ((line = STDIN.readLine()) != null) {
            line = line.trim();
            if (line.equals("---")) {
                sawSeparator = true;
                break;
            }
            if (line.isEmpty() || line.startsWith("#")) continue;
            String[] parts = line.split("\\s+");
            long v = Long.parseLong(parts[0]);
            long c = parts.length > 1 ? Long.parseLong(parts[1]) : 1L;
            h.recordValueWithCount(v, c);
        }
        return h;
    }

    static String stats(Histogram h) {
        return String.format(Locale.US,
            "{\"count\": %d, \"max\": %d, \"p50\": %d, \"p90\": %d, \"p99\": %d, \"p999\": %d}",
            h.getTotalCount(), h.getMaxValue(), h.getValueAtPercentile(50.0),
            h.getValueAtPercentile(90.0), h.getValueAtPercentile(99.0), h.getValueAtPercentile(99.9));
    }

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "hgrm": {
                Histogram h = readPairs();
                h.outputPercentileDistribution(System.out, Integer.parseInt(args[1]), Double.parseDouble(args[2]));
                break;
            }
            case "hgrm-multi": {
                do {
                    Histogram h = readPairs();
                    h.outputPercentileDistribution(System.out, Integer.parseInt(args[1]), Double.parseDouble(args[2]));
                    if (sawSeparator) System.out.println("---");
                } while (sawSeparator);
                break;
            }
            case "hlog-read": {
                HistogramLogReader reader = new HistogramLogReader(args[1]);
                Histogram all = new Histogram(1L, 60_000_000_000L, 3);
                Map<String, Histogram> byTag = new TreeMap<>();
                int intervals = 0;
                StringBuilder starts = new StringBuilder();
                EncodableHistogram e;
                while ((e = reader.nextIntervalHistogram()) != null) {
                    Histogram h = (Histogram) e;
                    intervals++;
                    all.add(h);
                    String tag = h.getTag() == null ? "" : h.getTag();
                    byTag.computeIfAbsent(tag, k -> new Histogram(1L, 60_000_000_000L, 3)).add(h);
                    if (starts.length() > 0) starts.append(", ");
                    starts.append(String.format(Locale.US, "[%d, %d]", h.getStartTimeStamp(), h.getEndTimeStamp()));
                }
                StringBuilder out = new StringBuilder();
                out.append(String.format(Locale.US, "{\"intervals\": %d, \"start_time_sec\": %.3f, \"interval_ms\": [%s], \"all\": %s, \"tags\": {",
                    intervals, reader.getStartTimeSec(), starts, stats(all)));
                boolean first = true;
                for (Map.Entry<String, Histogram> t : byTag.entrySet()) {
                    if (!first) out.append(", ");
                    first = false;
                    out.append("\"").append(t.getKey()).append("\": ").append(stats(t.getValue()));
                }
                out.append("}}");
                System.out.println(out);
                break;
            }
            case "hlog-write": {
                long startMsec = Long.parseLong(args[1]);
                Histogram h = readPairs();
                h.setTag("t");
                HistogramLogWriter w = new HistogramLogWriter(System.out);
                w.outputLogFormatVersion();
                w.outputStartTime(startMsec);
                w.outputBaseTime(startMsec);
                w.outputLegend();
                w.outputIntervalHistogram(0.0, 1.5, h);
                System.out.flush();
                break;
            }
            default:
                throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }
}
