#pragma once

#include <optional>
#include <QByteArray>

namespace tw {

enum class Operation : quint8 {
    Insert,
    Update,
    Replace,
    Delete,
    Drop,
    Rename,
    DropDatabase,
    Invalidate,
    Ddl, // createIndexes, dropIndexes, create, modify, …: the exact name travels in ChangeEvent
    Gap, // history was lost: the consumer must re-read
    // Every row of a table removed at once (PostgreSQL's TRUNCATE): a data change, not
    // a schema change, and not one delete per row, since the rows are not listed.
    Truncate,
};

// MongoDB's operationType string ("insert", …, "gap", and "truncate", which MongoDB
// has no counterpart of); Ddl yields "ddl".
QByteArray operationName(Operation op);
std::optional<Operation> operationFromName(QByteArrayView name); // unknown DDL names map to Ddl

// A change of the schema rather than of the data: drop, rename, dropDatabase and every
// DDL event (create, createIndexes, dropIndexes, modify, shardCollection, …). What a
// subscription's "data changes / schema changes" choice and MCP's resource_type split on.
constexpr bool isSchemaOperation(Operation op) {
    return op == Operation::Drop || op == Operation::Rename || op == Operation::DropDatabase ||
           op == Operation::Ddl;
}

} // namespace tw
