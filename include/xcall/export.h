/* xcall/export.h — which declarations form libxcall.so's interface.
 *
 * The library is compiled with hidden visibility by default
 * (-fvisibility=hidden), so only declarations marked XCALL_EXPORT are
 * exported from the shared library: the public C++ API and the C API
 * (xcall/xcall.h). In the static library the mark changes nothing.
 * Plain C, so that xcall/xcall.h can include it. */
#ifndef XCALL_EXPORT_H
#define XCALL_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define XCALL_EXPORT __attribute__((visibility("default")))
#else
#define XCALL_EXPORT
#endif

#endif /* XCALL_EXPORT_H */
