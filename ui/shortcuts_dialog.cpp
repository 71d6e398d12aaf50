#include "ui/shortcuts_dialog.h"

#include <QAbstractButton>
#include <QAction>
#include <QDialogButtonBox>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSet>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>

namespace tidelane::ui {
namespace {

QString clean(QString text) {
  text.remove(QLatin1Char('&'));
  text.remove(QStringLiteral("…"));
  text.remove(QStringLiteral("..."));
  return text.trimmed();
}

}  // namespace

QList<ShortcutEntry> ShortcutsDialog::collect(const QWidget* root) {
  QList<ShortcutEntry> out;
  QSet<QString> seen;
  const auto add = [&](const QString& text, const QKeySequence& keys) {
    const QString name = clean(text);
    if (keys.isEmpty() || name.isEmpty()) return;
    const QString key = name + QLatin1Char('\n') + keys.toString();
    if (seen.contains(key)) return;
    seen.insert(key);
    out.append({name, keys});
  };
  QList<const QAction*> actions;
  for (const QAction* a : root->findChildren<QAction*>()) actions.append(a);
  for (const QWidget* w : root->findChildren<QWidget*>()) {
    for (const QAction* a : w->actions()) actions.append(a);
  }
  for (const QAction* a : root->actions()) actions.append(a);
  for (const QAction* a : actions) {
    for (const auto& keys : a->shortcuts()) add(a->text(), keys);
  }
  for (const QAbstractButton* b : root->findChildren<QAbstractButton*>()) {
    add(b->accessibleName().isEmpty() ? b->text() : b->accessibleName(), b->shortcut());
  }
  std::sort(out.begin(), out.end(), [](const ShortcutEntry& a, const ShortcutEntry& b) {
    return a.action.localeAwareCompare(b.action) < 0;
  });
  return out;
}

ShortcutsDialog::ShortcutsDialog(const QWidget* root, QWidget* parent) : QDialog(parent) {
  setObjectName(QStringLiteral("shortcutsDialog"));
  setWindowTitle(tr("Keyboard shortcuts"));
  setAccessibleName(tr("Keyboard shortcuts"));
  const auto entries = collect(root);
  auto* table = new QTableWidget(static_cast<int>(entries.size()), 2, this);
  table->setObjectName(QStringLiteral("shortcutsTable"));
  table->setAccessibleName(tr("Keyboard shortcuts"));
  table->setHorizontalHeaderLabels({tr("Action"), tr("Shortcut")});
  table->verticalHeader()->hide();
  table->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table->setSelectionBehavior(QAbstractItemView::SelectRows);
  for (int i = 0; i < entries.size(); ++i) {
    table->setItem(i, 0, new QTableWidgetItem(entries[i].action));
    table->setItem(i, 1, new QTableWidgetItem(entries[i].keys.toString(QKeySequence::NativeText)));
  }
  table->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
  table->horizontalHeader()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
  auto* note = new QLabel(
      tr("In the composer, Enter sends and Shift+Enter adds a line; Esc gives up an edit."), this);
  note->setWordWrap(true);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close, this);
  buttons->button(QDialogButtonBox::Close)->setAccessibleName(tr("Close"));
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(table);
  layout->addWidget(note);
  layout->addWidget(buttons);
  resize(460, 480);
}

}  // namespace tidelane::ui
