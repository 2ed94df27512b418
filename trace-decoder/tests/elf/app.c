/* A tiny freestanding program whose ELF files test the symbolizer
 * (trace-decoder/src/symbols.rs): two functions that are not inlined, so each
 * has its own symbol and its own lines. See README.md for how the files are made. */

__attribute__((noinline)) int leaf(int x)
{
    return x * 3 + 1;
}

__attribute__((noinline)) int caller(int x)
{
    return leaf(x) + 2;
}

void _start(void)
{
    caller(5);
    for (;;) {
    }
}
