// ConversationListModel: the stored conversations as a flat list grouped by date —
// Pinned, Today, Yesterday, Previous 7 days, Older — each group led by a header row that
// cannot be selected. A filter shows the store's search results (titles and message text)
// instead, in one "Results" group. Editing a title renames the conversation in the store.
//
// Threading: GUI thread only. The store is not owned and must outlive the model; the model
// reloads whenever the store says its conversations changed.
#pragma once

#include <QAbstractListModel>
#include <QDateTime>
#include <QList>

#include "ui/conversation_store.h"

namespace tidelane::ui {

class ConversationListModel : public QAbstractListModel {
  Q_OBJECT

 public:
  enum Role {
    IdRole = Qt::UserRole + 1,  // qint64; 0 on a header row
    IsHeaderRole,
    PinnedRole,
    GroupRole,    // Group below
    SnippetRole,  // where a search found its words
  };
  enum class Group { Pinned, Today, Yesterday, Previous7Days, Older, Results };
  Q_ENUM(Group)

  explicit ConversationListModel(ConversationStore* store, QObject* parent = nullptr);

  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  bool setData(const QModelIndex& index, const QVariant& value, int role) override;
  Qt::ItemFlags flags(const QModelIndex& index) const override;

  // The group a conversation falls in, relative to `now` (local dates).
  static Group groupFor(const ConversationInfo& c, const QDateTime& now);
  static QString groupName(Group group);

  // Shows search results for `text` (an empty text shows every conversation).
  void setFilter(const QString& text);
  QString filter() const { return filter_; }
  // The moment groups are reckoned from; an invalid time (the default) means the clock.
  void setNow(const QDateTime& now);

  int rowOf(qint64 id) const;  // -1 when not shown
  qint64 idAt(int row) const;  // 0 for a header or no row

  // What the sidebar's actions do.
  bool togglePinned(qint64 id);
  bool remove(qint64 id);
  bool undoRemove(qint64 id);
  // Ends every undo window: removed conversations are deleted for good.
  bool purgeRemoved();

 public slots:
  void reload();

 private:
  struct Row {
    bool header = false;
    Group group = Group::Older;
    ConversationInfo info;
  };
  ConversationStore* store_;
  QString filter_;
  QDateTime now_;
  QList<Row> rows_;
};

}  // namespace tidelane::ui
