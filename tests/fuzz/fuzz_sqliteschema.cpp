// The SQLite schema snapshot a source keeps in its checkpoint (SqliteSchema::serialize),
// read back from the journal, where it may be damaged or from another version. The
// schema itself is read through SQLite's own PRAGMAs, never by parsing CREATE text, so
// the stored snapshot is the one input of ours to fuzz here. Input: the stored bytes.
//
// Checked: any bytes give a schema or the null one, never a crash; a schema read back
// serializes to a snapshot that reads back to the same schema; comparing it with nothing and
// with itself gives events (the create of everything) and none.
#include "FuzzInput.h"

#include "model/ChangeEvent.h"
#include "sources/sqlite/SqliteSchema.h"

#include <QString>

using namespace tw;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const QByteArray stored(reinterpret_cast<const char*>(data), qsizetype(size));
    const SqliteSchema schema = SqliteSchema::deserialize(stored);
    if (schema.isNull())
        return 0;
    const SqliteSchema reread = SqliteSchema::deserialize(schema.serialize());
    fuzz::check(!reread.isNull() && reread.entries().size() == schema.entries().size(),
                "a schema snapshot does not read back");
    const auto everything = [](const QString&) { return true; };
    const ChangeEventList none = SqliteSchema::diff(schema, reread, QStringLiteral("fuzz"), 0, everything);
    fuzz::check(none.isEmpty(), "a schema differs from its own snapshot");
    const ChangeEventList created =
        SqliteSchema::diff(SqliteSchema(), schema, QStringLiteral("fuzz"), 0, everything);
    for (const ChangeEvent& event : created)
        (void)event.toJson();
    (void)SqliteSchema::renames(SqliteSchema(), schema);
    return 0;
}
