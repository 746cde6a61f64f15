// domain.cpp — xcall::domain and xcall::cpu_attachment: thin public wrappers
// that forward to domain_impl, where each call form has one implementation;
// and domain_impl's own construction and destruction.
#include "xcall/domain.hpp"

#include "csd_ops.hpp"
#include "domain_impl.hpp"

namespace xcall {
namespace detail {

domain_impl::domain_impl(const domain_options& options)
    : options_(validate_options(options)),
      online_(options_.nr_cpus),
      cpus_(std::make_unique<cpu_state[]>(options_.nr_cpus)),
      nr_slots_(outside_slot_count(options_.nr_cpus)),
      slots_(std::make_unique<outside_slot[]>(nr_slots_)) {
  switch (options_.engine_kind) {
    case engine::classic:
      classic_ = std::make_unique<classic_domain>();
      break;
    case engine::percpu:
      break;  // its state is the per-CPU queues every domain has
  }
  for (cpu_t id = 0; id < nr_cpu_ids(); ++id) {
    cpus_[id].dom = this;
    cpus_[id].id = id;
    cpus_[id].owned = options_.start_threads;
  }
  if (options_.start_threads) start_owned_cpus();
}

domain_impl::~domain_impl() {
  check_no_attached_cpus();
  stop_owned_cpus();
}

}  // namespace detail

bool call_single_data::in_flight() const noexcept { return detail::csd_ops::is_locked(*this); }

domain::domain(const domain_options& options)
    : impl_(std::make_unique<detail::domain_impl>(options)) {}
domain::~domain() = default;

cpu_t domain::nr_cpu_ids() const noexcept { return impl_->nr_cpu_ids(); }
const cpumask& domain::online_mask() const noexcept { return impl_->online_mask(); }
bool domain::cpu_online(cpu_t cpu) const noexcept {
  return cpu < nr_cpu_ids() && impl_->online_mask().test(cpu);
}
const domain_options& domain::options() const noexcept { return impl_->options(); }
std::vector<cpu_stats> domain::stats() const { return impl_->stats(); }

std::error_code domain::cpu_down(cpu_t cpu) { return impl_->cpu_down(cpu); }
std::error_code domain::cpu_up(cpu_t cpu) { return impl_->cpu_up(cpu); }

std::error_code domain::call_function_single(cpu_t cpu, call_func_t func, void* info, bool wait) {
  return impl_->call_single(cpu, func, info, wait);
}
std::error_code domain::call_function_single_async(cpu_t cpu, call_single_data& csd) {
  return impl_->call_single_async(cpu, csd);
}
std::error_code domain::call_function_many(const cpumask& mask, call_func_t func, void* info,
                                           bool wait) {
  return impl_->call_many(mask, func, info, wait, /*run_self=*/false, nullptr);
}
std::error_code domain::call_function(call_func_t func, void* info, bool wait) {
  return impl_->call_many(impl_->online_mask(), func, info, wait, /*run_self=*/false, nullptr);
}
std::error_code domain::call_function_any(const cpumask& mask, call_func_t func, void* info,
                                          bool wait) {
  return impl_->call_any(mask, func, info, wait);
}
std::error_code domain::on_each_cpu(call_func_t func, void* info, bool wait) {
  return impl_->call_many(impl_->online_mask(), func, info, wait, /*run_self=*/true, nullptr);
}
std::error_code domain::on_each_cpu_mask(const cpumask& mask, call_func_t func, void* info,
                                         bool wait) {
  return impl_->call_many(mask, func, info, wait, /*run_self=*/true, nullptr);
}
std::error_code domain::on_each_cpu_cond_mask(cond_func_t cond, call_func_t func, void* info,
                                              bool wait, const cpumask& mask) {
  // A null cond means every CPU of the mask, as in the kernel.
  return impl_->call_many(mask, func, info, wait, /*run_self=*/true, cond);
}

cpu_attachment domain::attach(cpu_t cpu, const attach_options& how) {
  impl_->attach(cpu, how);  // throws std::system_error naming what is wrong
  return cpu_attachment(impl_.get(), cpu);
}

cpu_attachment::cpu_attachment(cpu_attachment&& other) noexcept
    : impl_(std::exchange(other.impl_, nullptr)), cpu_(std::exchange(other.cpu_, no_cpu)) {}

cpu_attachment& cpu_attachment::operator=(cpu_attachment&& other) noexcept {
  if (this != &other) {
    detach();
    impl_ = std::exchange(other.impl_, nullptr);
    cpu_ = std::exchange(other.cpu_, no_cpu);
  }
  return *this;
}

cpu_attachment::~cpu_attachment() { detach(); }

int cpu_attachment::doorbell_fd() const noexcept {
  return impl_ == nullptr ? -1 : impl_->cpu(cpu_).doorbell_fd.load(std::memory_order_relaxed);
}

void cpu_attachment::detach() {
  if (impl_ == nullptr) return;
  impl_->detach(cpu_);
  impl_ = nullptr;
  cpu_ = no_cpu;
}

}  // namespace xcall
