// A program outside xcall that uses it the way a user would.
#include <xcall/cpumask.hpp>

int main() {
  xcall::cpumask m(8);
  m.set(3);
  return m.count() == 1 ? 0 : 1;
}
