# The test suite of calc: `sh tests/run.sh` exits 0 when every case passes.
. ./src/calc.sh

failures=0
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        echo "ok   $1"
    else
        echo "FAIL $1: expected $2, got $3"
        failures=$((failures + 1))
    fi
}

check "add 2 3" 5 "$(add 2 3)"
check "add -1 1" 0 "$(add -1 1)"
check "mul 4 5" 20 "$(mul 4 5)"
check "mul 7 0" 0 "$(mul 7 0)"

[ -f tests/more.sh ] && . ./tests/more.sh

echo "$failures failed"
[ "$failures" -eq 0 ]
