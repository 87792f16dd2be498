/* A stand-in for bcryptprimitives.dll under Wine 8.0 (Debian 12), which lacks ProcessPrng.
 *
 * Rust's standard library (1.78 and later) imports ProcessPrng from bcryptprimitives.dll for
 * every Windows program; Wine 8.0's builtin bcryptprimitives.dll does not export it, so every
 * Rust .exe exits with code 53 before main. This DLL exports ProcessPrng and takes its bytes
 * from BCryptGenRandom with the system-preferred RNG, which Wine implements. It is installed
 * only into the throw-away Wine prefix of tests/windows-leg.sh, never shipped.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll processprng.c \
 *        processprng.def -lbcrypt
 */
#include <windows.h>

typedef LONG NTSTATUS;
#define BCRYPT_USE_SYSTEM_PREFERRED_RNG 0x00000002

NTSTATUS WINAPI BCryptGenRandom(void *alg, unsigned char *buf, ULONG len, ULONG flags);

/* ProcessPrng always succeeds on Windows (it returns TRUE); a failure of the underlying
 * generator is reported as FALSE so that std panics loudly instead of using zeros. */
BOOL WINAPI ProcessPrng(unsigned char *data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst;
    (void)reason;
    (void)reserved;
    return TRUE;
}
