/* Test harness only, never shipped: Rust's standard library (1.78+) takes
 * its random numbers from ProcessPrng in bcryptprimitives.dll, which Wine
 * 8 (Debian 12) does not provide. This stand-in forwards to RtlGenRandom
 * (advapi32's SystemFunction036), which Wine has, so the Windows build of
 * kizuki can run under Wine in CI. Newer Wine has ProcessPrng itself and
 * the script then leaves this file unused. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length) {
        ULONG n = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        length -= n;
    }
    return TRUE;
}
