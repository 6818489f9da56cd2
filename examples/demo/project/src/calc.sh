# calc: integer arithmetic for shell scripts. Source it: `. src/calc.sh`.

add() { echo $(($1 + $2)); }

mul() { echo $(($1 * $2)); }
