using System.Diagnostics.CodeAnalysis;
using KestrelTcp.Configuration;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Hosting;

/// <summary>Registers the handlers configuration can name. Returned by <c>AddKestrelTcp()</c>.</summary>
public sealed class KestrelTcpBuilder(IServiceCollection services)
{
    /// <summary>The application's services.</summary>
    public IServiceCollection Services { get; } = services;

    /// <summary>Registers <typeparamref name="THandler"/> under <paramref name="name"/>; it takes no options.</summary>
    public KestrelTcpBuilder AddHandler<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] THandler>(string name) where THandler : ConnectionHandler
    {
        Services.AddSingleton(new HandlerRegistration(name, typeof(THandler), static (_, _) => null));
        return this;
    }

    /// <summary>
    /// Registers <typeparamref name="THandler"/> under <paramref name="name"/> with options read from each
    /// listener's <c>Options</c> section at start-up; the handler gets them from
    /// <see cref="ListenerDefinition.GetHandlerOptions{TOptions}"/>.
    /// </summary>
    public KestrelTcpBuilder AddHandler<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] THandler, TOptions>(string name)
        where THandler : ConnectionHandler
        where TOptions : class, IHandlerOptions<TOptions>
    {
        Services.AddSingleton(new HandlerRegistration(name, typeof(THandler), static (section, problems) => TOptions.Parse(section, problems)));
        return this;
    }
}
