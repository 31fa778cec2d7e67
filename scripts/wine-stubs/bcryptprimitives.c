/*
 * Stand-in for bcryptprimitives.dll, which Wine 8.0 does not ship (it arrived in Wine 8.13).
 *
 * Rust's standard library (1.78 and later) imports ProcessPrng from this DLL on Windows to seed
 * HashMap and friends, so without it every Rust test binary fails to start under Wine 8.0.
 * ProcessPrng fills a buffer with random bytes and cannot fail on real Windows; here the bytes
 * come from advapi32's RtlGenRandom (exported as SystemFunction036), whose length is a ULONG,
 * so large requests are served in pieces.
 *
 * Built by scripts/setup-wine.sh with x86_64-w64-mingw32-gcc and copied into the prefix's system32.
 */
#include <windows.h>

__declspec(dllimport) BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    const SIZE_T piece = 1u << 30;
    while (len > 0) {
        ULONG n = (ULONG)(len < piece ? len : piece);
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
