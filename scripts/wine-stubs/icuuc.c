/*
 * Stand-in for Windows' icuuc.dll (the system ICU that Windows 10 1703+ ships), which Wine 8.0
 * does not provide.
 *
 * Qt6Core 6.12 imports the ucnv_* converter functions from it for QStringConverter's optional
 * codecs. Without the DLL Qt6Core does not load at all. With this stand-in every converter fails to
 * open, so Qt falls back to its built-in codecs (UTF-8/16/32, Latin-1 and the system code page),
 * which is all that qipc's tests need. Functions that Qt can only reach through an open converter
 * report U_ILLEGAL_ARGUMENT_ERROR and do nothing.
 *
 * setup-wine.sh checks that this file exports every icuuc symbol Qt6Core.dll imports.
 */
#include <stddef.h>
#include <stdint.h>

#define EXPORT __declspec(dllexport)

typedef int UErrorCode; /* > 0 is a failure */
typedef uint16_t UChar;
typedef struct UConverter UConverter;

enum { U_ILLEGAL_ARGUMENT_ERROR = 1, U_FILE_ACCESS_ERROR = 4 };

static void fail(UErrorCode *status)
{
    if (status && *status <= 0)
        *status = U_ILLEGAL_ARGUMENT_ERROR;
}

EXPORT UConverter *ucnv_open(const char *name, UErrorCode *status)
{
    (void)name;
    if (status && *status <= 0)
        *status = U_FILE_ACCESS_ERROR; /* "no converter data": the converter does not exist */
    return NULL;
}

EXPORT void ucnv_close(UConverter *c) { (void)c; }
EXPORT void ucnv_reset(UConverter *c) { (void)c; }
EXPORT int8_t ucnv_getMaxCharSize(const UConverter *c) { (void)c; return 4; }
EXPORT int32_t ucnv_countAvailable(void) { return 0; }
EXPORT const char *ucnv_getAvailableName(int32_t n) { (void)n; return NULL; }

EXPORT const char *ucnv_getName(const UConverter *c, UErrorCode *status)
{
    (void)c;
    fail(status);
    return NULL;
}

EXPORT const char *ucnv_getStandardName(const char *name, const char *standard, UErrorCode *status)
{
    (void)name;
    (void)standard;
    fail(status);
    return NULL;
}

/* The callbacks are only passed around as function pointers; they are never reached. */
EXPORT void UCNV_FROM_U_CALLBACK_SUBSTITUTE(void) {}
EXPORT void UCNV_TO_U_CALLBACK_SUBSTITUTE(void) {}

EXPORT void ucnv_getToUCallBack(const UConverter *c, void **action, const void **context)
{
    (void)c;
    if (action) *action = NULL;
    if (context) *context = NULL;
}

EXPORT void ucnv_getFromUCallBack(const UConverter *c, void **action, const void **context)
{
    (void)c;
    if (action) *action = NULL;
    if (context) *context = NULL;
}

EXPORT void ucnv_setToUCallBack(UConverter *c, void *action, const void *context, void **old_action,
                                const void **old_context, UErrorCode *status)
{
    (void)c; (void)action; (void)context; (void)old_action; (void)old_context;
    fail(status);
}

EXPORT void ucnv_setFromUCallBack(UConverter *c, void *action, const void *context, void **old_action,
                                  const void **old_context, UErrorCode *status)
{
    (void)c; (void)action; (void)context; (void)old_action; (void)old_context;
    fail(status);
}

EXPORT void ucnv_cbToUWriteUChars(void *args, const UChar *source, int32_t length, int32_t offset,
                                  UErrorCode *status)
{
    (void)args; (void)source; (void)length; (void)offset;
    fail(status);
}

EXPORT void ucnv_cbFromUWriteUChars(void *args, const UChar **source, const UChar *limit, int32_t offset,
                                    UErrorCode *status)
{
    (void)args; (void)source; (void)limit; (void)offset;
    fail(status);
}

EXPORT void ucnv_toUnicode(UConverter *c, UChar **target, const UChar *target_limit, const char **source,
                           const char *source_limit, int32_t *offsets, int8_t flush, UErrorCode *status)
{
    (void)c; (void)target; (void)target_limit; (void)source; (void)source_limit; (void)offsets; (void)flush;
    fail(status);
}

EXPORT void ucnv_fromUnicode(UConverter *c, char **target, const char *target_limit, const UChar **source,
                             const UChar *source_limit, int32_t *offsets, int8_t flush, UErrorCode *status)
{
    (void)c; (void)target; (void)target_limit; (void)source; (void)source_limit; (void)offsets; (void)flush;
    fail(status);
}

EXPORT int32_t ucnv_toUCountPending(const UConverter *c, UErrorCode *status)
{
    (void)c;
    fail(status);
    return 0;
}

EXPORT int32_t ucnv_fromUCountPending(const UConverter *c, UErrorCode *status)
{
    (void)c;
    fail(status);
    return 0;
}
