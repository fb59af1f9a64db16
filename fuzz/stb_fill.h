// stb_fill.h — the byte that stb_impl.cpp fills each block stb_image
// allocates with (fuzz_image decodes every input once with each of two).
#pragma once

extern unsigned char fuzz_stb_fill;
