# Sourced by the build and test scripts: the toolchain quirks of Debian's Emscripten.
export NODE_PATH=/usr/share/nodejs   # emcc needs acorn from here
