// Casts every raw word read from stdin (ap_fixed<SRC_W, SRC_I>) to DST_T and prints the raw result:
// the reference fkhls.fixedpoint.cast_raw is tested against. Built by tests/test_fixedpoint.py.
#include <cstdint>
#include <iostream>
#include "ap_fixed.h"

typedef ap_fixed<SRC_W, SRC_I> src_t;
typedef DST_T dst_t;

int main() {
    long long raw;
    while (std::cin >> raw) {
        src_t x;
        x.range(SRC_W - 1, 0) = (unsigned long long)raw;
        dst_t y = x;
        long long low = (long long)y.range(dst_t::width - 1, 0).to_uint64();
        std::cout << low << "\n";
    }
    return 0;
}
