#include "Operation.h"

namespace tw {

QByteArray operationName(Operation op) {
    switch (op) {
    case Operation::Insert:
        return QByteArrayLiteral("insert");
    case Operation::Update:
        return QByteArrayLiteral("update");
    case Operation::Replace:
        return QByteArrayLiteral("replace");
    case Operation::Delete:
        return QByteArrayLiteral("delete");
    case Operation::Drop:
        return QByteArrayLiteral("drop");
    case Operation::Rename:
        return QByteArrayLiteral("rename");
    case Operation::DropDatabase:
        return QByteArrayLiteral("dropDatabase");
    case Operation::Invalidate:
        return QByteArrayLiteral("invalidate");
    case Operation::Ddl:
        return QByteArrayLiteral("ddl");
    case Operation::Gap:
        return QByteArrayLiteral("gap");
    case Operation::Truncate:
        return QByteArrayLiteral("truncate");
    }
    return QByteArrayLiteral("unknown");
}

std::optional<Operation> operationFromName(QByteArrayView name) {
    static const struct {
        const char* name;
        Operation op;
    } table[] = {{"insert", Operation::Insert},
                 {"update", Operation::Update},
                 {"replace", Operation::Replace},
                 {"delete", Operation::Delete},
                 {"drop", Operation::Drop},
                 {"rename", Operation::Rename},
                 {"dropDatabase", Operation::DropDatabase},
                 {"invalidate", Operation::Invalidate},
                 {"gap", Operation::Gap},
                 {"truncate", Operation::Truncate}};
    for (const auto& entry : table)
        if (name == QByteArrayView(entry.name))
            return entry.op;
    if (name.isEmpty())
        return std::nullopt;
    return Operation::Ddl;
}

} // namespace tw
