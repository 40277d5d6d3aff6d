#!/usr/bin/env bash
# Regenerate tests/fixtures/*.hgrm from the Java reference implementation.
# Needs: apt-get install -y libhdrhistogram-java openjdk-17-jdk-headless
set -euo pipefail
cd "$(dirname "$0")/../.."
JAR=/usr/share/java/hdrhistogram.jar
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
javac -cp "$JAR" -d "$BUILD" scripts/hdrtool/HdrTool.java
python3 scripts/hdrtool/gen_fixture_values.py tests/fixtures
run() { # dataset ticks scaling outname
    java -cp "$JAR:$BUILD" HdrTool hgrm "$2" "$3" < "tests/fixtures/$1.values" > "tests/fixtures/$4.hgrm"
}
for d in empty one_value constant uniform bimodal longtail small deep; do
    run "$d" 5 1000.0 "$d"
done
# Non-default tick density and scaling exercise the parameters themselves.
run longtail 1 1.0 longtail_t1_s1
run bimodal 10 1000000.0 bimodal_t10_ms
run small 5 1.0 small_s1
