"""The functions the SQL console allows, by the name the engine runs: pure scalar functions of
their arguments (no files, network, dictionaries, settings or other tables) and aggregates with a
few combinators. Anything not listed here is refused by name."""

from __future__ import annotations

AGGREGATES = """
count sum avg min max any anyLast any_value argMin argMax uniq uniqExact uniqCombined uniqHLL12
median quantile quantiles quantileExact quantilesExact quantileTDigest quantilesTDigest
quantileTiming quantilesTiming groupArray groupUniqArray topK stddevPop stddevSamp varPop varSamp
corr covarPop covarSamp avgWeighted countDistinct sumWithOverflow first_value last_value
row_number rank dense_rank percent_rank lagInFrame leadInFrame nth_value ntile
""".split()  # noqa: SIM905 (a word list reads best as words)

# `sumIf`, `uniqExactOrNull`, `countDistinctIf`, `sumArray`... (`State` and `Merge` are left out:
# aggregate states are binary values, not results).
AGGREGATE_COMBINATORS = ("", "If", "Distinct", "OrNull", "OrDefault", "Array")

# Left out on purpose: leftPad/rightPad (a short query builds megabyte strings with them) and
# positionCaseInsensitive (its time grows with haystack times needle, past the engine's time
# checks; `ilike` covers it).
SCALARS = """
plus minus multiply divide intDiv intDivOrZero modulo moduloOrZero negate abs round roundBankers
floor ceil ceiling trunc truncate sqrt cbrt exp log ln log2 log10 pow power greatest least sign
isFinite isInfinite isNaN e pi
equals notEquals less greater lessOrEquals greaterOrEquals and or not xor if multiIf ifNull
nullIf coalesce isNull isNotNull assumeNotNull toNullable isZeroOrNull
toString toFixedString toInt8 toInt16 toInt32 toInt64 toUInt8 toUInt16 toUInt32 toUInt64
toFloat32 toFloat64 toDecimal32 toDecimal64 toBool toDate toDate32 toDateTime toDateTime64 toUUID
toInt64OrNull toInt64OrZero toUInt64OrNull toUInt64OrZero toFloat64OrNull toFloat64OrZero
toDateOrNull toDateTimeOrNull toUUIDOrNull toDecimal64OrNull
CAST accurateCastOrNull toTypeName parseDateTimeBestEffort parseDateTimeBestEffortOrNull
parseDateTime64BestEffort parseDateTime64BestEffortOrNull
toUnixTimestamp toUnixTimestamp64Milli fromUnixTimestamp fromUnixTimestamp64Milli
now now64 today yesterday toYear toQuarter toMonth toWeek toDayOfMonth toDayOfWeek toDayOfYear
toHour toMinute toSecond toStartOfDay toStartOfHour toStartOfMinute toStartOfWeek toStartOfMonth
toStartOfQuarter toStartOfYear toStartOfFiveMinutes toStartOfFiveMinute toStartOfTenMinutes
toStartOfFifteenMinutes toStartOfInterval toMonday toYYYYMM toYYYYMMDD toYYYYMMDDhhmmss toTimeZone
dateDiff date_diff DATE_DIFF dateAdd date_add DATE_ADD dateSub date_sub DATE_SUB dateTrunc
date_trunc DATE_TRUNC age addSeconds addMinutes addHours addDays addWeeks addMonths addYears
subtractSeconds subtractMinutes subtractHours subtractDays subtractWeeks subtractMonths
subtractYears toIntervalSecond toIntervalMinute toIntervalHour toIntervalDay toIntervalWeek
toIntervalMonth toIntervalYear formatDateTime EXTRACT timeSlot
length lengthUTF8 char_length empty notEmpty lower upper lowerUTF8 upperUTF8 concat
concatWithSeparator substring substr substringUTF8 left right leftUTF8 rightUTF8 trim TRIM
trimBoth trimLeft trimRight ltrim rtrim startsWith endsWith position POSITION locate
positionUTF8 like ilike notLike notILike
match multiSearchAny replace replaceAll replaceOne replaceRegexpAll replaceRegexpOne
regexpExtract extract extractAll splitByChar splitByString splitByRegexp arrayStringConcat
reverse toValidUTF8 isValidUTF8 base64Encode hex
JSONExtract JSONExtractString JSONExtractInt JSONExtractUInt JSONExtractFloat JSONExtractBool
JSONExtractRaw JSONExtractKeys JSONExtractArrayRaw JSONHas JSONLength JSONType JSON_VALUE
JSON_QUERY JSON_EXISTS simpleJSONExtractString simpleJSONExtractRaw simpleJSONHas
visitParamExtractString visitParamExtractRaw
array arrayJoin has hasAny hasAll indexOf arrayMap arrayFilter arrayExists arrayAll arraySum
arrayAvg arrayMin arrayMax arrayCount arraySort arrayReverseSort arrayDistinct arrayConcat
arraySlice arrayElement arrayUniq arrayEnumerate arrayFirst arrayLast arrayReverse arrayZip
arrayCompact arrayFlatten range emptyArrayString
tuple tupleElement map mapKeys mapValues mapContains
cityHash64 sipHash64 xxHash64
""".split()  # noqa: SIM905 (a word list reads best as words)
